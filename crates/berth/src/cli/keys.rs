//! `berth keys rotate`: makes the server sign with a new key (platform admins). Tokens signed
//! with the old key keep working until they expire; its public half stays in the JWKS.

use super::http::HttpClient;
use super::store::Store;
use super::token;

#[derive(clap::Subcommand)]
pub enum KeysCommand {
    /// Create a new signing key and make it current.
    Rotate,
}

#[derive(serde::Deserialize)]
struct Rotated {
    kid: String,
}

pub async fn run(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Rotate => {
            let store = Store::from_env()?;
            let credentials = token::valid_credentials(&store).await?;
            let client = HttpClient::new(credentials.ca_cert.as_deref())?;
            let url = format!("{}/api/v1/auth/keys/rotate", credentials.server);
            let rotated: Rotated = client
                .post_json(&url, Some(&credentials.access_token))
                .await?;
            out!("New signing key: {}", rotated.kid)?;
            Ok(())
        }
    }
}
