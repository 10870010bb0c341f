//! `berth backups …`, `berth instances restore` and `berth instances clone` (issue 9), and
//! `berth firewall|config|db-users|databases …` (issue 10), run as a user would, against the
//! shared server.

use serde_json::Value;

use crate::cli::{berth_ok, berth_run, login_by_device};
use crate::common::*;

#[tokio::test]
async fn berth_backups_restore_and_clone_commands() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let (u, _, _) = create_member(&api, &admin, "cli-bk").await;
    let dir = temp_dir("cli-bk").join("berth");
    login_by_device(&api, s, &dir, &u).await;
    let json_of = |text: String| -> Value {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    };
    let name = unique("clibk");
    berth_ok(&dir, &["instances", "create", &name, "--wait"]).await;
    // Its first backup, which Berth takes by itself.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let listed = json_of(berth_ok(&dir, &["backups", "list", &name, "-o", "json"]).await);
        let backups = listed["backups"].as_array().unwrap();
        if backups
            .iter()
            .any(|b| b["status"] == "completed" && b["trigger"] == "initial")
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{listed}");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }

    // Firewall rules: listed, added and removed (each waits until applied).
    let rules = berth_ok(&dir, &["firewall", "list", &name]).await;
    assert!(
        rules.starts_with("CIDR") && rules.contains("127.0.0.0/8"),
        "{rules}"
    );
    let added = berth_ok(
        &dir,
        &[
            "firewall",
            "add",
            &name,
            "10.1.2.3/24",
            "--description",
            "office",
        ],
    )
    .await;
    assert!(added.contains("Added 10.1.2.0/24"), "{added}");
    let (ok, _, err) = berth_run(&dir, &["firewall", "add", &name, "0.0.0.0/0"]).await;
    assert!(!ok && err.contains("too broad"), "{err}");
    let listed = json_of(berth_ok(&dir, &["firewall", "list", &name, "-o", "json"]).await);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["cidr"] == "10.1.2.0/24" && r["description"] == "office"),
        "{listed}"
    );
    berth_ok(&dir, &["firewall", "remove", &name, "10.1.2.0/24"]).await;
    let (ok, _, err) = berth_run(&dir, &["firewall", "remove", &name, "10.1.2.0/24"]).await;
    assert!(!ok && err.contains("no rule"), "{err}");

    // Configuration: set (waits until applied), shown, refused out of range, reset.
    let set = berth_ok(
        &dir,
        &["config", "set", &name, "work_mem=8MB", "max_connections=40"],
    )
    .await;
    assert!(
        set.contains("work_mem = 8MB")
            && set.contains("max_connections take effect at the next restart"),
        "{set}"
    );
    let got = berth_ok(&dir, &["config", "get", &name]).await;
    assert!(
        got.starts_with("NAME") && got.contains("8MB") && got.contains("restart pending"),
        "{got}"
    );
    let (ok, _, err) = berth_run(&dir, &["config", "set", &name, "work_mem=4TB"]).await;
    assert!(!ok && err.contains("out of range"), "{err}");
    berth_ok(
        &dir,
        &["config", "set", &name, "work_mem=", "max_connections="],
    )
    .await;
    let got = berth_ok(&dir, &["config", "get", &name, "work_mem"]).await;
    assert!(got.contains("2MB"), "{got}");

    // Database users and databases.
    let made = berth_ok(
        &dir,
        &[
            "db-users",
            "create",
            &name,
            "reporter",
            "--profile",
            "read-only",
        ],
    )
    .await;
    assert!(made.contains("Password (shown only now):"), "{made}");
    let users = berth_ok(&dir, &["db-users", "list", &name]).await;
    assert!(
        users.contains("reporter") && users.contains("read_only"),
        "{users}"
    );
    let reset = berth_ok(&dir, &["db-users", "reset-password", &name, "reporter"]).await;
    assert!(reset.contains("New password of reporter"), "{reset}");
    let created = berth_ok(
        &dir,
        &[
            "databases",
            "create",
            &name,
            "reports",
            "--owner",
            "reporter",
        ],
    )
    .await;
    assert!(created.contains("reports (owner reporter)"), "{created}");
    let dbs = berth_ok(&dir, &["databases", "list", &name]).await;
    assert!(dbs.contains("reports"), "{dbs}");
    let (ok, _, err) = berth_run(&dir, &["db-users", "delete", &name, "reporter"]).await;
    assert!(!ok && err.contains("owns database"), "{err}");
    berth_ok(&dir, &["databases", "delete", &name, "reports"]).await;
    berth_ok(&dir, &["db-users", "delete", &name, "reporter"]).await;

    // A backup taken and waited for, then listed with the restore window.
    let taken =
        json_of(berth_ok(&dir, &["backups", "create", &name, "--wait", "-o", "json"]).await);
    assert_eq!(taken["status"], "completed", "{taken}");
    let backup = taken["id"].as_str().unwrap().to_owned();
    let listed = berth_ok(&dir, &["backups", "list", &name]).await;
    assert!(
        listed.starts_with("ID") && listed.contains(&backup),
        "{listed}"
    );
    assert!(listed.contains("Restorable from "), "{listed}");
    let (ok, _, err) = berth_run(&dir, &["backups", "create", &name, "--type", "weekly"]).await;
    assert!(!ok && err.contains("use full, diff or incr"), "{err}");

    // The policy, shown and changed.
    let policy = berth_ok(&dir, &["backups", "policy", &name]).await;
    assert!(policy.contains("30 days"), "{policy}");
    let changed = json_of(
        berth_ok(
            &dir,
            &[
                "backups",
                "policy",
                &name,
                "--schedule",
                "01:15,sun,wed",
                "--retention",
                "3full",
                "--differential-every",
                "12",
                "-o",
                "json",
            ],
        )
        .await,
    );
    assert_eq!(changed["full_backup_time"], "01:15");
    assert_eq!(
        changed["full_backup_days"],
        serde_json::json!(["wednesday", "sunday"])
    );
    assert_eq!(changed["retention_full_backups"], 3);
    assert_eq!(changed["differential_every_hours"], 12);
    let (ok, _, err) = berth_run(
        &dir,
        &["backups", "policy", &name, "--retention", "forever"],
    )
    .await;
    assert!(!ok && err.contains("--retention takes"), "{err}");

    // Restore from the backup, and a clone, each waited for.
    let restored = unique("clibk-r");
    let out = json_of(
        berth_ok(
            &dir,
            &[
                "instances",
                "restore",
                &name,
                &restored,
                "--backup",
                &backup,
                "--wait",
                "-o",
                "json",
            ],
        )
        .await,
    );
    assert_eq!(out["status"], "running", "{out}");
    assert_eq!(out["restored_from"]["backup_id"], backup.as_str(), "{out}");
    assert!(!out["password"].as_str().unwrap().is_empty());
    let cloned = unique("clibk-c");
    let out = berth_ok(&dir, &["instances", "clone", &name, &cloned, "--wait"]).await;
    assert!(out.contains("is running"), "{out}");
    let (ok, _, err) = berth_run(
        &dir,
        &[
            "instances",
            "restore",
            &name,
            &unique("x"),
            "--at",
            "2001-01-01T00:00:00Z",
        ],
    )
    .await;
    assert!(!ok && err.contains("restore window"), "{err}");

    for n in [&restored, &cloned, &name] {
        berth_ok(&dir, &["instances", "delete", n, "--yes"]).await;
    }
    // A deleted instance's backups, by its ID.
    let id = taken["instance_id"].as_str().unwrap();
    let listed = berth_ok(&dir, &["backups", "list", id]).await;
    assert!(listed.contains(&backup), "{listed}");
}
