//! Berth's own store across restarts and crashes (a dedicated server): data survives a
//! restart, a killed server recovers, and no PostgreSQL process outlives the server.

use crate::common::*;

#[tokio::test]
async fn store_survives_restart_and_recovers_from_a_killed_server() {
    let dir = Dedicated::new_dir("lifecycle", &base_config());
    let mut server = Dedicated::start(&dir, ADMIN_PASSWORD);
    let data = server.server.data_dir();

    // First start: create a user.
    let api = Api::new(&server.server);
    let admin = admin_token(&api).await;
    let u = create_user(&api, &admin, "durable").await;
    let project = create_project(&api, &token_of(&api, &u).await, "durable").await;
    assert!(postmaster_pid(&data).is_some_and(process_alive));
    assert!(!system_postgres_processes(&data).is_empty());

    // SIGTERM: clean exit, PostgreSQL stopped with it.
    server.terminate_cleanly("after SIGTERM").await;

    // Restart on the same data: same users; the admin is not created (nor its password
    // changed) again, even though another password is offered now.
    server.restart("another-admin-password-1");
    let api = Api::new(&server.server);
    let r = send(api.post_json(
        "/api/v1/auth/token",
        &login_body("admin", "another-admin-password-1"),
    ))
    .await;
    r.expect_error(401, "invalid_credentials");
    let admin = admin_token(&api).await;
    let r = send(
        api.get(&format!("/api/v1/users/{}", u.id))
            .bearer_auth(&admin),
    )
    .await;
    r.expect(200);
    assert_eq!(r.json["username"], u.username.as_str());
    let user_token = token_of(&api, &u).await;
    send(
        api.get(&format!("/api/v1/projects/{}", &project.id.to_string()))
            .bearer_auth(&user_token),
    )
    .await
    .expect(200);
    let log = server.server.log_text();
    assert!(
        !log.contains("created administrator"),
        "admin created again:\n{log}"
    );
    assert!(
        !log.contains("with password:"),
        "admin password generated:\n{log}"
    );

    // SIGKILL: berth cannot stop its PostgreSQL, which keeps running.
    let pg = postmaster_pid(&data).expect("postmaster.pid");
    let status = server.stop_with(libc::SIGKILL);
    assert!(!status.success());
    assert!(process_alive(pg), "PostgreSQL {pg} died with berth");

    // The next start recovers on its own, with the data intact.
    server.restart(ADMIN_PASSWORD);
    let api = Api::new(&server.server);
    let admin = admin_token(&api).await;
    let r = send(
        api.get(&format!("/api/v1/users/{}", u.id))
            .bearer_auth(&admin),
    )
    .await;
    r.expect(200);
    let user_token = token_of(&api, &u).await;
    let r = send(api.get("/api/v1/projects").bearer_auth(&user_token)).await;
    r.expect(200);
    assert_eq!(ids(&r.json), vec![project.id.to_string()]);
    // Writes work too.
    create_project(&api, &user_token, "after-crash").await;

    server.terminate_cleanly("after the final SIGTERM").await;
    assert!(!process_alive(pg) || system_postgres_processes(&data).is_empty());
    server.remove_dir();
}
