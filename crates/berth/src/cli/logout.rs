//! `berth logout`: revokes the stored tokens at the server (RFC 7009; the refresh token first,
//! since revoking it ends the whole session) and deletes the local credentials. The local part
//! always happens; if the server could not be told, the command says so and what that means.

use super::http::{ClientAuth, HttpClient, HttpError};
use super::store::{Credentials, Store};

pub async fn run() -> anyhow::Result<()> {
    logout(&Store::from_env()?).await
}

async fn logout(store: &Store) -> anyhow::Result<()> {
    let locked = store.lock()?;
    let Some(credentials) = locked.load()? else {
        out!("Not logged in; nothing to do.")?;
        return Ok(());
    };
    let revoked = revoke_all(&credentials).await;
    locked.remove()?;
    match revoked {
        Ok(()) => out!("Logged out of {}.", credentials.server)?,
        Err(why) => {
            out!("Logged out locally: deleted {}.", locked.path().display())?;
            eprintln!(
                "berth: warning: {why}; the tokens stay valid at {} until they expire",
                credentials.server
            );
        }
    }
    Ok(())
}

/// Revokes the refresh token, then the access token. Errors say why the server was not told.
async fn revoke_all(credentials: &Credentials) -> Result<(), String> {
    let Some(endpoint) = &credentials.revocation_endpoint else {
        return Err("the server has no revocation endpoint, so nothing was revoked".into());
    };
    let client = HttpClient::new(credentials.ca_cert.as_deref()).map_err(|e| format!("{e:#}"))?;
    let auth = credentials
        .client_secret
        .as_deref()
        .map(|secret| ClientAuth {
            id: &credentials.client_id,
            secret,
        });
    let mut tokens = Vec::new();
    if let Some(rt) = &credentials.refresh_token {
        tokens.push((rt.as_str(), "refresh_token"));
    }
    tokens.push((credentials.access_token.as_str(), "access_token"));
    for (token, hint) in tokens {
        let mut form = vec![("token", token), ("token_type_hint", hint)];
        if auth.is_none() {
            form.push(("client_id", &credentials.client_id));
        }
        if let Err(e) = client.revoke(endpoint, &form, auth).await {
            return Err(describe(&e));
        }
    }
    Ok(())
}

fn describe(e: &HttpError) -> String {
    match e {
        HttpError::Unreachable { url, source } => {
            let mut text = format!("could not reach {url} to revoke the tokens");
            let mut cause: Option<&dyn std::error::Error> = Some(source);
            while let Some(c) = cause {
                let s = c.to_string();
                if !text.contains(&s) {
                    text.push_str(": ");
                    text.push_str(&s);
                }
                cause = c.source();
            }
            text
        }
        other => format!("the server did not revoke the tokens ({other})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::store::tests::{sample, TempDir};

    #[test]
    fn unreachable_server_still_logs_out_locally() {
        let tmp = TempDir::new();
        let mut c = sample();
        // Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
        c.revocation_endpoint = Some("http://127.0.0.1:9/oauth/revoke".into());
        let store = Store::new(tmp.0.clone());
        store.lock().unwrap().save(&c).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let why = runtime.block_on(revoke_all(&c)).unwrap_err();
        assert!(why.contains("could not reach"), "{why}");
        runtime.block_on(logout(&store)).unwrap();
        assert_eq!(store.lock().unwrap().load().unwrap(), None);
        // Logging out again is fine.
        runtime.block_on(logout(&store)).unwrap();
    }
}
