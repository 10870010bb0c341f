//! `berth whoami`: who the stored credentials sign in as, from `GET /api/v1/auth/check`. The
//! answer is read loosely (unknown fields and auth methods are fine) so an older CLI keeps
//! working against a newer server.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::http::HttpClient;
use super::store::{Credentials, Store};
use super::token::{self, SESSION_ENDED};

#[derive(clap::Args)]
pub struct WhoamiArgs {
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
    output: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Debug, Deserialize)]
pub struct Check {
    #[serde(default)]
    pub user: Option<CheckUser>,
    #[serde(default)]
    pub auth_method: Option<String>,
    #[serde(default)]
    pub permissions: Vec<String>,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub credential_id: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct CheckUser {
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

impl Check {
    /// "alice <alice@example.com>", or the client for a service account without a user.
    pub fn describe_subject(&self) -> String {
        let user = self.user.as_ref();
        match (
            user.and_then(|u| u.username.as_deref()),
            user.and_then(|u| u.email.as_deref())
                .filter(|e| !e.is_empty()),
            self.client_id.as_deref(),
        ) {
            (Some(name), Some(email), _) => format!("{name} <{email}>"),
            (Some(name), None, _) => name.to_owned(),
            (None, _, Some(client)) => format!("client {client}"),
            (None, _, None) => "an unnamed principal".to_owned(),
        }
    }

    fn render(&self, server: &str, now: DateTime<Utc>) -> String {
        let mut lines = vec![
            format!("Server:       {server}"),
            format!("User:         {}", self.describe_subject()),
        ];
        if let Some(m) = &self.auth_method {
            lines.push(format!("Auth method:  {m}"));
        }
        if let Some(c) = &self.client_id {
            lines.push(format!("Client:       {c}"));
        }
        if let Some(id) = &self.credential_id {
            lines.push(format!("Credential:   {id}"));
        }
        let permissions = if self.permissions.is_empty() {
            "(none)".to_owned()
        } else {
            self.permissions.join(" ")
        };
        lines.push(format!("Permissions:  {permissions}"));
        lines.push(match self.expires_at {
            Some(at) => format!("Expires:      {} ({})", at.to_rfc3339(), relative(at, now)),
            None => "Expires:      never (until revoked)".to_owned(),
        });
        lines.join("\n")
    }
}

/// "in 59 min", "2 h ago", …
fn relative(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (at - now).num_seconds();
    let abs = secs.unsigned_abs();
    let amount = match abs {
        0..=119 => format!("{abs} s"),
        120..=7199 => format!("{} min", abs / 60),
        7200..=172_799 => format!("{} h", abs / 3600),
        _ => format!("{} days", abs / 86_400),
    };
    if secs >= 0 {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

pub async fn run(args: WhoamiArgs) -> anyhow::Result<()> {
    let store = Store::from_env()?;
    let credentials = token::valid_credentials(&store).await?;
    let client = HttpClient::new(credentials.ca_cert.as_deref())?;
    let raw: serde_json::Value = fetch(&client, &credentials).await?;
    match args.output {
        Format::Json => out!("{}", serde_json::to_string_pretty(&raw)?)?,
        Format::Text => {
            let check: Check = serde_json::from_value(raw).map_err(|e| {
                anyhow::anyhow!(
                    "unexpected answer from {}/api/v1/auth/check: {e}",
                    credentials.server
                )
            })?;
            out!("{}", check.render(&credentials.server, Utc::now()))?;
        }
    }
    Ok(())
}

/// `GET /api/v1/auth/check` with the stored access token.
pub async fn check(client: &HttpClient, credentials: &Credentials) -> anyhow::Result<Check> {
    fetch(client, credentials).await
}

async fn fetch<T: serde::de::DeserializeOwned>(
    client: &HttpClient,
    credentials: &Credentials,
) -> anyhow::Result<T> {
    let url = format!("{}/api/v1/auth/check", credentials.server);
    match client.get_json(&url, Some(&credentials.access_token)).await {
        Ok(v) => Ok(v),
        Err(e) if e.status() == Some(reqwest::StatusCode::UNAUTHORIZED) => {
            Err(anyhow::Error::new(e).context(format!(
                "the server no longer accepts your access token (revoked?); {SESSION_ENDED}"
            )))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_person_and_a_service_account() {
        let now: DateTime<Utc> = "2030-01-01T00:00:00Z".parse().unwrap();
        let person: Check = serde_json::from_value(serde_json::json!({
            "user": {"id": "x", "username": "alice", "email": "alice@example.com", "extra": 1},
            "auth_method": "access_token",
            "permissions": ["projects:create", "projects:read"],
            "expires_at": "2030-01-01T00:59:00Z",
            "credential_id": "0190",
            "client_id": "berth-cli",
        }))
        .unwrap();
        let text = person.render("https://b.example", now);
        assert!(
            text.contains("User:         alice <alice@example.com>"),
            "{text}"
        );
        assert!(text.contains("Auth method:  access_token"), "{text}");
        assert!(
            text.contains("Permissions:  projects:create projects:read"),
            "{text}"
        );
        assert!(text.contains("(in 59 min)"), "{text}");

        let machine: Check = serde_json::from_value(serde_json::json!({
            "auth_method": "client_credentials",
            "permissions": [],
            "expires_at": null,
            "client_id": "berth_ci_123",
        }))
        .unwrap();
        let text = machine.render("https://b.example", now);
        assert!(text.contains("User:         client berth_ci_123"), "{text}");
        assert!(text.contains("never"), "{text}");
    }

    #[test]
    fn relative_times() {
        let now: DateTime<Utc> = "2030-01-01T00:00:00Z".parse().unwrap();
        let s = chrono::Duration::seconds;
        assert_eq!(relative(now + s(30), now), "in 30 s");
        assert_eq!(relative(now - s(7200), now), "2 h ago");
        assert_eq!(relative(now + s(86_400 * 30), now), "in 30 days");
    }
}
