//! A busy store pool is not a dead store (issue 7, review finding A): a burst of self-service
//! changes that each confirm the current password used to hold a pooled connection across the
//! confirmation (which needs another one), drain the pool, and — pool timeouts counting as lost
//! connections — mark the store down, so every tenant got 503 "the store is unavailable".

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::common::*;

/// Self-service PATCHes sent at once: several times the pool's 32 connections.
const BURST: usize = 120;

#[tokio::test]
async fn concurrent_password_confirmations_leave_the_store_up_for_everyone() {
    let dir = Dedicated::new_dir("busy-pool", &base_config());
    let mut server = Dedicated::start(&dir, ADMIN_PASSWORD);
    let api = Api::new(&server.server);
    let admin = admin_token(&api).await;
    let user = create_user(&api, &admin, "burst").await;
    let token = token_of(&api, &user).await;
    let (_, bystander, _) = create_member(&api, &admin, "bystander").await;
    let path = format!("/api/v1/users/{}", user.id);
    let body = json!({"email": user.email, "current_password": user.password});

    // While the burst runs, a bystander of another tenant keeps working and /readyz is watched.
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (api, done, bystander) = (api.clone(), done.clone(), bystander.clone());
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let ready = send(api.get("/readyz")).await;
                let projects = send(api.get("/api/v1/projects").bearer_auth(&bystander)).await;
                seen.push((ready.status, projects.status, projects.text));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            seen
        })
    };
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..BURST {
        let (api, path, body, token) = (api.clone(), path.clone(), body.clone(), token.clone());
        burst.spawn(async move { send(api.patch_json(&path, &body).bearer_auth(&token)).await });
    }
    let mut answers = Vec::new();
    while let Some(r) = burst.join_next().await {
        answers.push(r.unwrap());
    }
    done.store(true, Ordering::Relaxed);
    let seen = watcher.await.unwrap();

    // Each PATCH succeeds or is told briefly to come back (a full hashing queue, the throttle);
    // none is told the store is away.
    let ok = answers.iter().filter(|r| r.status == 200).count();
    assert!(ok > 0, "no PATCH succeeded: {:#?}", answers.first());
    for r in &answers {
        assert!(
            matches!(r.status, 200 | 429 | 503),
            "unexpected answer: {r:#?}"
        );
        if r.status != 200 {
            assert!(r.header("retry-after").is_some(), "{r:#?}");
            assert!(!r.text.contains("store is unavailable"), "{r:#?}");
        }
    }
    assert!(!seen.is_empty());
    for (ready, projects, text) in &seen {
        assert_eq!(*ready, 200, "/readyz during the burst");
        assert_eq!(*projects, 200, "the bystander during the burst: {text}");
    }
    send(api.get("/api/v1/projects").bearer_auth(&bystander))
        .await
        .expect(200);
    let log = server.server.log_text();
    assert!(
        !log.contains("the store is unavailable"),
        "a busy pool was taken for a dead store; log:\n{log}"
    );
    server.terminate_cleanly("after the burst").await;
    server.remove_dir();
}
