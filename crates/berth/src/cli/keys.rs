//! `berth keys rotate`: makes the server sign with a new key (platform admins). Tokens signed
//! with the old key keep working until they expire; its public half stays in the JWKS.

use berth_client::{Berth, Credential};

use super::http::HttpClient;
use super::store::Store;
use super::token;

#[derive(clap::Subcommand)]
pub enum KeysCommand {
    /// Create a new signing key and make it current.
    Rotate,
}

pub async fn run(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Rotate => {
            let store = Store::from_env()?;
            let credentials = token::valid_credentials(&store).await?;
            let client = HttpClient::new(credentials.ca_cert.as_deref())?;
            let berth = Berth::new(
                client,
                &credentials.server,
                Credential::Bearer(credentials.access_token.clone()),
            );
            let rotated = berth.rotate_signing_key().await?;
            out!("New signing key: {}", rotated.kid)?;
            Ok(())
        }
    }
}
