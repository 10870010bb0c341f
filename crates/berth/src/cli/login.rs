//! `berth login`: bootstraps from the server URL alone (`/api/v1/auth/provider`, then the
//! issuer's RFC 8414 metadata) and signs in with the device flow (a person approves in a
//! browser) or, given a client id and secret, with client credentials (a machine). The result
//! goes to the credentials file for `berth token` and friends.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use chrono::Utc;

use super::device::{poll_until_granted, Poll, Schedule};
use berth_client::{Berth, Credential};
use berth_types::AuthProvider;

use super::http::{ClientAuth, HttpClient, HttpError, Metadata, TokenResponse};
use super::store::{Credentials, Store};
use super::{browser, token, whoami};

const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

#[derive(clap::Args)]
pub struct LoginArgs {
    /// The Berth server's base URL, e.g. https://berth.example.com.
    #[arg(long, env = "BERTH_SERVER")]
    server: String,
    /// Sign in as an API client (service account) instead of as yourself.
    #[arg(long, env = "BERTH_CLIENT_ID")]
    client_id: Option<String>,
    /// The API client's secret; prefer the BERTH_CLIENT_SECRET environment variable, which
    /// keeps it out of the process list and shell history.
    #[arg(long, env = "BERTH_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    /// Space-separated scopes to request [default: the server's CLI scopes for a person, the
    /// client's registered scopes for an API client].
    #[arg(long)]
    scope: Option<String>,
    /// Print the URL but do not try to open a browser.
    #[arg(long)]
    no_browser: bool,
    /// A PEM file with an extra root certificate, for a server whose certificate a private CA
    /// signed. Remembered for later commands.
    #[arg(long, env = "BERTH_CA_CERT")]
    ca_cert: Option<PathBuf>,
}

pub async fn run(args: LoginArgs) -> anyhow::Result<()> {
    let store = Store::from_env()?;
    let server = normalize_server(&args.server)?;
    let ca_cert = match &args.ca_cert {
        Some(p) => Some(std::path::absolute(p).context("resolving --ca-cert")?),
        None => None,
    };
    let client = HttpClient::new(ca_cert.as_deref())?;
    let bootstrap = Berth::new(client.clone(), &server, Credential::None);
    let provider = bootstrap.auth_provider().await.map_err(|e| {
        let hint = match e.status() {
            Some(reqwest::StatusCode::NOT_FOUND) => " (is it a Berth server?)",
            _ => "",
        };
        anyhow::Error::new(e).context(format!("asking {server} how to sign in{hint}"))
    })?;
    let metadata = client
        .metadata(&provider.issuer_uri)
        .await
        .context("fetching the authorization server metadata")?;

    let credentials = match args.client_id {
        Some(client_id) => {
            let Some(secret) = args.client_secret.filter(|s| !s.is_empty()) else {
                anyhow::bail!(
                    "--client-id needs a client secret: set BERTH_CLIENT_SECRET (or pass \
                     --client-secret)"
                );
            };
            client_credentials(&client, &metadata, client_id, secret, args.scope).await?
        }
        None => device_flow(&client, &provider, &metadata, args.scope, !args.no_browser).await?,
    };
    let credentials = Credentials {
        server: server.clone(),
        ca_cert,
        ..credentials
    };
    store.lock()?.save(&credentials)?;

    // Confirm the token works and say who we are; the login stands even if this fails.
    match whoami::check(&client, &credentials).await {
        Ok(check) => out!(
            "Logged in to {server} as {}.",
            whoami::describe_subject(&check)
        )?,
        Err(e) => {
            out!("Logged in to {server}.")?;
            eprintln!("berth: warning: could not confirm the new credentials: {e:#}");
        }
    }
    Ok(())
}

/// Checks and tidies the server URL: http(s), no query or fragment, no trailing slash.
pub fn normalize_server(raw: &str) -> anyhow::Result<String> {
    let url = url::Url::parse(raw.trim())
        .with_context(|| format!("{raw:?} is not a URL (try https://berth.example.com)"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        anyhow::bail!("{raw:?} is not an http(s) URL");
    }
    if url.query().is_some() || url.fragment().is_some() {
        anyhow::bail!("{raw:?}: the server URL cannot have a query or fragment");
    }
    if url.scheme() == "http" && !is_loopback(&url) {
        eprintln!("berth: warning: {url} is not HTTPS; tokens will cross the network unencrypted");
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

async fn client_credentials(
    client: &HttpClient,
    metadata: &Metadata,
    client_id: String,
    secret: String,
    scope: Option<String>,
) -> anyhow::Result<Credentials> {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(s) = &scope {
        form.push(("scope", s));
    }
    let auth = ClientAuth {
        id: &client_id,
        secret: &secret,
    };
    let token = client
        .token(&metadata.token_endpoint, &form, Some(auth))
        .await
        .map_err(|e| match e.oauth_error() {
            Some("invalid_client" | "unauthorized_client") => anyhow::Error::new(e).context(
                format!("the server does not accept client {client_id} with this secret (wrong, revoked or expired)"),
            ),
            _ => anyhow::Error::new(e).context("requesting a client-credentials token"),
        })?;
    Ok(credentials_from(
        metadata,
        client_id,
        Some(secret),
        scope,
        token,
    ))
}

async fn device_flow(
    client: &HttpClient,
    provider: &AuthProvider,
    metadata: &Metadata,
    scope: Option<String>,
    try_browser: bool,
) -> anyhow::Result<Credentials> {
    let Some(endpoint) = &metadata.device_authorization_endpoint else {
        anyhow::bail!(
            "this server does not offer device sign-in (no device_authorization_endpoint)"
        );
    };
    let scope = scope
        .or_else(|| Some(provider.scope.clone()))
        .filter(|s| !s.is_empty());
    let mut form = vec![("client_id", provider.client_id.as_str())];
    if let Some(s) = &scope {
        form.push(("scope", s));
    }
    if let Some(a) = Some(provider.audience.as_str()).filter(|a| !a.is_empty()) {
        form.push(("audience", a));
    }
    let device = client
        .device_authorization(endpoint, &form)
        .await
        .context("starting the device sign-in")?;
    let started = Instant::now();

    let url = device
        .verification_uri_complete
        .as_deref()
        .unwrap_or(&device.verification_uri);
    out!("To sign in, open this page in a browser:\n\n    {url}\n")?;
    out!(
        "and check that it shows this code:\n\n    {}\n",
        device.user_code
    )?;
    if device.verification_uri_complete.is_some() {
        out!("(Or open {} and type the code.)", device.verification_uri)?;
    }
    if try_browser && browser::open(url) {
        out!("A browser window should have opened.")?;
    }
    let minutes = device.expires_in.div_ceil(60);
    out!(
        "Waiting for approval (the code expires in {minutes} minute{})…",
        if minutes == 1 { "" } else { "s" }
    )?;

    let schedule = Schedule::new(started, device.interval, device.expires_in);
    let token = poll_until_granted(
        schedule,
        Instant::now,
        async |d| tokio::time::sleep(d).await,
        async || {
            let form = [
                ("grant_type", DEVICE_CODE_GRANT),
                ("device_code", device.device_code.as_str()),
                ("client_id", provider.client_id.as_str()),
            ];
            classify(client.token(&metadata.token_endpoint, &form, None).await)
        },
    )
    .await?;
    Ok(credentials_from(
        metadata,
        provider.client_id.clone(),
        None,
        scope,
        token,
    ))
}

/// One poll's answer, in the schedule's terms; an error ends the polling.
fn classify(result: Result<TokenResponse, HttpError>) -> anyhow::Result<Poll<TokenResponse>> {
    let e = match result {
        Ok(token) => return Ok(Poll::Granted(token)),
        Err(e) => e,
    };
    match (e.oauth_error(), &e) {
        (Some("authorization_pending"), _) => Ok(Poll::Pending),
        (Some("slow_down"), _) => Ok(Poll::SlowDown),
        (Some("access_denied"), _) => Err(anyhow::anyhow!("the sign-in was denied in the browser")),
        (Some("expired_token"), _) => Err(anyhow::anyhow!(
            "the code expired before the sign-in was approved; run `berth login` again"
        )),
        (_, HttpError::RateLimited { retry_after, .. }) => Ok(Poll::RateLimited(*retry_after)),
        _ if e.is_transient() => Ok(Poll::Transient(e.into())),
        _ => Err(anyhow::Error::new(e).context("waiting for the sign-in")),
    }
}

fn credentials_from(
    metadata: &Metadata,
    client_id: String,
    client_secret: Option<String>,
    requested_scope: Option<String>,
    token: TokenResponse,
) -> Credentials {
    let now = Utc::now();
    let mut credentials = Credentials {
        server: String::new(),
        client_id,
        client_secret,
        token_endpoint: metadata.token_endpoint.clone(),
        revocation_endpoint: metadata.revocation_endpoint.clone(),
        access_token: String::new(),
        expires_at: now,
        refresh_token: None,
        scope: requested_scope,
        ca_cert: None,
    };
    token::apply(&mut credentials, token, now);
    credentials
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    #[test]
    fn server_urls() {
        assert_eq!(
            normalize_server("https://b.example/").unwrap(),
            "https://b.example"
        );
        assert_eq!(
            normalize_server(" http://127.0.0.1:8080 ").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            normalize_server("https://b.example/berth/").unwrap(),
            "https://b.example/berth"
        );
        assert!(normalize_server("b.example").is_err());
        assert!(normalize_server("ftp://b.example").is_err());
        assert!(normalize_server("https://b.example/?x=1").is_err());
    }

    fn oauth(error: &str) -> Result<TokenResponse, HttpError> {
        Err(HttpError::OAuth {
            url: "u".into(),
            status: StatusCode::BAD_REQUEST,
            error: error.into(),
            description: None,
        })
    }

    #[test]
    fn poll_replies() {
        assert!(matches!(
            classify(oauth("authorization_pending")),
            Ok(Poll::Pending)
        ));
        assert!(matches!(classify(oauth("slow_down")), Ok(Poll::SlowDown)));
        let denied = classify(oauth("access_denied")).unwrap_err();
        assert!(denied.to_string().contains("denied"));
        let expired = classify(oauth("expired_token")).unwrap_err();
        assert!(expired.to_string().contains("berth login"));
        assert!(classify(oauth("invalid_grant")).is_err());
        let limited = Err(HttpError::RateLimited {
            url: "u".into(),
            retry_after: None,
        });
        assert!(matches!(classify(limited), Ok(Poll::RateLimited(None))));
        let bad_gateway = Err(HttpError::Unexpected {
            url: "u".into(),
            status: StatusCode::BAD_GATEWAY,
            detail: String::new(),
        });
        assert!(matches!(classify(bad_gateway), Ok(Poll::Transient(_))));
    }
}
