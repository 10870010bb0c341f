//! `berth whoami`: who the stored credentials sign in as, from `GET /api/v1/auth/check`. An
//! auth method this client does not know (from a newer server) is shown as the server named it,
//! and unknown fields are ignored, so an older CLI keeps working against a newer server.

use berth_client::{Berth, Credential, Raw};
use berth_types::{AuthCheck, AuthMethod};
use chrono::{DateTime, Utc};

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

/// "alice <alice@example.com>", or the client for a service account without a user name.
pub fn describe_subject(check: &AuthCheck) -> String {
    let user = &check.user;
    match (
        user.username.as_str(),
        user.email.as_str(),
        check.client_id.as_deref(),
    ) {
        ("", _, Some(client)) => format!("client {client}"),
        ("", _, None) => "an unnamed principal".to_owned(),
        (name, "", _) => name.to_owned(),
        (name, email, _) => format!("{name} <{email}>"),
    }
}

fn render(check: &Raw<AuthCheck>, server: &str, now: DateTime<Utc>) -> String {
    let mut lines = vec![
        format!("Server:       {server}"),
        format!("User:         {}", describe_subject(check)),
    ];
    // As the server named it, also when this client does not know the method.
    let method = match check.auth_method {
        AuthMethod::Unknown => check.json["auth_method"]
            .as_str()
            .unwrap_or("unknown")
            .to_owned(),
        m => m.to_string(),
    };
    lines.push(format!("Auth method:  {method}"));
    if let Some(c) = &check.client_id {
        lines.push(format!("Client:       {c}"));
    }
    lines.push(format!("Credential:   {}", check.credential_id));
    let permissions = if check.permissions.is_empty() {
        "(none)".to_owned()
    } else {
        check.permissions.join(" ")
    };
    lines.push(format!("Permissions:  {permissions}"));
    lines.push(match check.expires_at {
        Some(at) => format!("Expires:      {} ({})", at.to_rfc3339(), relative(at, now)),
        None => "Expires:      never (until revoked)".to_owned(),
    });
    lines.join("\n")
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
    let check = fetch(&client, &credentials).await?;
    match args.output {
        Format::Json => out!("{}", serde_json::to_string_pretty(&check.json)?)?,
        Format::Text => out!("{}", render(&check, &credentials.server, Utc::now()))?,
    }
    Ok(())
}

/// `GET /api/v1/auth/check` with the stored access token.
pub async fn check(client: &HttpClient, credentials: &Credentials) -> anyhow::Result<AuthCheck> {
    Ok(fetch(client, credentials).await?.value)
}

async fn fetch(client: &HttpClient, credentials: &Credentials) -> anyhow::Result<Raw<AuthCheck>> {
    let berth = Berth::new(
        client.clone(),
        &credentials.server,
        Credential::Bearer(credentials.access_token.clone()),
    );
    match berth.check_raw().await {
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

    fn check(user: &str, email: &str, fields: serde_json::Value) -> Raw<AuthCheck> {
        let mut json = serde_json::json!({
            "user": {"id": "01900000-0000-7000-8000-000000000001", "username": user,
                     "email": email, "is_platform_admin": false, "disabled": false,
                     "created_at": "2030-01-01T00:00:00Z", "updated_at": "2030-01-01T00:00:00Z",
                     "last_login_at": null, "extra": 1},
            "credential_id": "01900000-0000-7000-8000-0000000000c1",
            "some_future_field": {"x": 1},
        });
        for (k, v) in fields.as_object().unwrap() {
            json[k] = v.clone();
        }
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn renders_a_person_and_a_service_account() {
        let now: DateTime<Utc> = "2030-01-01T00:00:00Z".parse().unwrap();
        let person = check(
            "alice",
            "alice@example.com",
            serde_json::json!({
                "auth_method": "access_token",
                "permissions": ["projects:create", "projects:read"],
                "expires_at": "2030-01-01T00:59:00Z",
                "client_id": "berth-cli",
            }),
        );
        let text = render(&person, "https://b.example", now);
        assert!(
            text.contains("User:         alice <alice@example.com>"),
            "{text}"
        );
        assert!(text.contains("Auth method:  access_token"), "{text}");
        assert!(
            text.contains("Credential:   01900000-0000-7000-8000-0000000000c1"),
            "{text}"
        );
        assert!(
            text.contains("Permissions:  projects:create projects:read"),
            "{text}"
        );
        assert!(text.contains("(in 59 min)"), "{text}");

        let machine = check(
            "",
            "",
            serde_json::json!({
                "auth_method": "client_credentials",
                "permissions": [],
                "expires_at": null,
                "client_id": "berth_ci_123",
            }),
        );
        let text = render(&machine, "https://b.example", now);
        assert!(text.contains("User:         client berth_ci_123"), "{text}");
        assert!(text.contains("Permissions:  (none)"), "{text}");
        assert!(text.contains("never"), "{text}");

        let no_email = check(
            "bob",
            "",
            serde_json::json!({"auth_method": "api_key",
            "permissions": [], "expires_at": null}),
        );
        assert_eq!(describe_subject(&no_email), "bob");
    }

    #[test]
    fn a_newer_servers_auth_method_is_shown_as_named() {
        let now: DateTime<Utc> = "2030-01-01T00:00:00Z".parse().unwrap();
        let c = check(
            "alice",
            "a@example.com",
            serde_json::json!({"auth_method": "passkey", "permissions": [], "expires_at": null}),
        );
        assert_eq!(c.auth_method, AuthMethod::Unknown);
        let text = render(&c, "https://b.example", now);
        assert!(text.contains("Auth method:  passkey"), "{text}");
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
