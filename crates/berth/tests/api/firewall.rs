//! Firewall rules (issue 10), enforced by PostgreSQL: a connection from an address outside
//! every rule is refused, one inside is accepted, from two real source addresses (loopback is a
//! whole /8: a small proxy connects to the instance from 127.0.0.2); established connections
//! survive a change; bad input gets clear 400s, duplicates 409, other tenants 404.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;

use crate::backups::{ca_file, create_body, make, psql, wait_job};
use crate::common::*;

/// Listens on 127.0.0.1 and relays every connection to `target` from the source address
/// 127.0.0.2, so the instance sees that address.
async fn proxy_from_127_0_0_2(target: SocketAddr) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let socket = tokio::net::TcpSocket::new_v4().unwrap();
                socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
                if let Ok(mut upstream) = socket.connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
            });
        }
    });
    addr
}

/// The instance's URL, reached through `proxy` instead.
fn via(url: &str, proxy: SocketAddr) -> String {
    let (head, tail) = url.split_once("@127.0.0.1:").unwrap();
    let (_, rest) = tail.split_once('/').unwrap();
    format!("{head}@127.0.0.1:{}/{rest}", proxy.port())
}

async fn rules(api: &Api, token: &str, id: &str) -> Vec<String> {
    let r = send(
        api.get(&format!("/api/v1/instances/{id}/firewall-rules"))
            .bearer_auth(token),
    )
    .await;
    r.expect(200);
    assert_eq!(
        r.json["count"].as_u64(),
        r.json["results"].as_array().map(|a| a.len() as u64)
    );
    r.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["cidr"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn rules_are_enforced_by_postgres_from_two_source_addresses() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let (_, token, project) = create_member(&api, &admin, "fw").await;
    let (_, stranger, _) = create_member(&api, &admin, "fw-stranger").await;
    let project = project.id.to_string();
    let ca = ca_file(&api).await;

    // The default: this host only.
    let plain = make(&api, &token, create_body(&project, "fw-default")).await;
    assert_eq!(
        rules(&api, &token, &plain.id).await,
        ["127.0.0.0/8", "::1/128"]
    );

    // Set at create: only 127.0.0.1 itself.
    let mut body = create_body(&project, "fw-strict");
    body["firewall_rules"] = json!([{"cidr": "127.0.0.1", "description": "this host"}]);
    let inst = make(&api, &token, body).await;
    let base = format!("/api/v1/instances/{}/firewall-rules", inst.id);
    assert_eq!(rules(&api, &token, &inst.id).await, ["127.0.0.1/32"]);
    let port = inst.body["port"].as_u64().unwrap() as u16;
    let proxy = proxy_from_127_0_0_2(SocketAddr::from(([127, 0, 0, 1], port))).await;
    assert_eq!(
        psql(&inst.url, &ca, &inst.password, "SELECT 1")
            .await
            .unwrap(),
        "1"
    );
    let refused = psql(&via(&inst.url, proxy), &ca, &inst.password, "SELECT 1")
        .await
        .unwrap_err();
    assert!(
        refused.contains("no pg_hba.conf entry for host \"127.0.0.2\""),
        "{refused}"
    );

    // A connection made now (from 127.0.0.1) outlives the changes below: a session that
    // sleeps through them, then answers.
    let held = {
        let (url, ca, password) = (inst.url.clone(), ca.clone(), inst.password.clone());
        tokio::spawn(async move {
            psql(
                &url,
                &ca,
                &password,
                "SELECT pg_sleep(8); SELECT 'still here'",
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Let 127.0.0.2 in: at once.
    let r = send(
        api.post_json(
            &base,
            &json!({"cidr": "127.0.0.2/32", "description": "the proxy"}),
        )
        .bearer_auth(&token),
    )
    .await;
    r.expect(202);
    assert_eq!(r.json["rule"]["cidr"], "127.0.0.2/32");
    let job = wait_job(&api, &token, r.json["job_id"].as_str().unwrap()).await;
    assert_eq!(job["state"], "SUCCESS", "{job}");
    assert_eq!(job["type"], "firewall");
    assert_eq!(
        psql(&via(&inst.url, proxy), &ca, &inst.password, "SELECT 1")
            .await
            .unwrap(),
        "1"
    );

    // Remove 127.0.0.1: new connections from it are refused, the one it has stays.
    let listed = send(api.get(&base).bearer_auth(&token)).await;
    let own = listed.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["cidr"] == "127.0.0.1/32")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = send(api.delete(&format!("{base}/{own}")).bearer_auth(&token)).await;
    r.expect(202);
    wait_job(&api, &token, r.json["job_id"].as_str().unwrap()).await;
    let refused = psql(&inst.url, &ca, &inst.password, "SELECT 1")
        .await
        .unwrap_err();
    assert!(
        refused.contains("no pg_hba.conf entry for host \"127.0.0.1\""),
        "{refused}"
    );
    let answer = held
        .await
        .unwrap()
        .expect("the established connection stayed");
    assert!(answer.ends_with("still here"), "{answer}");
    send(api.delete(&format!("{base}/{own}")).bearer_auth(&token))
        .await
        .expect(404);

    // Bad input: clear 400s; a duplicate (also when written differently) 409.
    for bad in [
        "0.0.0.0/0",
        "::/0",
        "10.0.0.0/7",
        "300.1.1.1",
        "10.0.0.0/33",
        "example.com",
        "",
        "10.0.0.0/8\nhost all all 0.0.0.0/0 trust",
    ] {
        let r = send(
            api.post_json(&base, &json!({"cidr": bad}))
                .bearer_auth(&token),
        )
        .await;
        assert_eq!(r.status, 400, "{bad:?}: {}", r.json);
    }
    let r = send(
        api.post_json(
            &base,
            &json!({"cidr": "10.0.0.0/8", "description": "x".repeat(201)}),
        )
        .bearer_auth(&token),
    )
    .await;
    r.expect(400);
    send(
        api.post_json(&base, &json!({"cidr": "127.0.0.2"}))
            .bearer_auth(&token),
    )
    .await
    .expect_error(409, "conflict");
    let mut body = create_body(&project, "fw-bad");
    body["firewall_rules"] = json!([{"cidr": "0.0.0.0/0"}]);
    send(
        api.post_json("/api/v1/instances", &body)
            .bearer_auth(&token),
    )
    .await
    .expect(400);
    body["firewall_rules"] = json!([{"cidr": "10.0.0.1"}, {"cidr": "10.0.0.1/32"}]);
    send(
        api.post_json("/api/v1/instances", &body)
            .bearer_auth(&token),
    )
    .await
    .expect(400);

    // No rule: nobody over TCP.
    let mut body = create_body(&project, "fw-closed");
    body["firewall_rules"] = json!([]);
    let closed = make(&api, &token, body).await;
    assert!(rules(&api, &token, &closed.id).await.is_empty());
    assert!(psql(&closed.url, &ca, &closed.password, "SELECT 1")
        .await
        .is_err());

    // Another project's member: 404 for every firewall route.
    for r in [
        send(api.get(&base).bearer_auth(&stranger)).await,
        send(
            api.post_json(&base, &json!({"cidr": "10.0.0.0/8"}))
                .bearer_auth(&stranger),
        )
        .await,
        send(api.delete(&format!("{base}/{own}")).bearer_auth(&stranger)).await,
    ] {
        assert_eq!(r.status, 404, "{}", r.json);
    }
    for id in [&plain.id, &inst.id, &closed.id] {
        send(
            api.delete(&format!("/api/v1/instances/{id}"))
                .bearer_auth(&token),
        )
        .await
        .expect(202);
    }
}
