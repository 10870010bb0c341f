//! OAuth API clients (service accounts): a confidential client acts as the user who created it,
//! narrowed by its scopes and optionally to one project, and always expires. Deleting a client
//! revokes it and every token issued to it at once.

use berth_auth::secret::{self, SecretKind};
use berth_store::credentials::clients::{ClientRow, NewClient};
use berth_types::{Client, CreateClient, CreatedClient, Page, Permission};
use uuid::Uuid;

use crate::audit::Event;
use crate::authz::principal::scope_names;
use crate::{validate, App, AppError, Principal};

pub(crate) const GRANT_CLIENT_CREDENTIALS: &str = "client_credentials";
pub(crate) const GRANT_REFRESH: &str = "refresh_token";
pub(crate) const GRANT_DEVICE: &str = "urn:ietf:params:oauth:grant-type:device_code";
pub(crate) const GRANT_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// The client id of Berth's own CLI (a public client).
pub const CLI_CLIENT_ID: &str = "berth-cli";

pub(crate) fn view(r: &ClientRow) -> Client {
    Client {
        id: r.id,
        client_id: r.client_id.clone(),
        name: r.name.clone(),
        owner_id: r.owner_id,
        project_id: r.project_id,
        scopes: r.scopes.clone(),
        grant_types: r.grant_types.clone(),
        created_at: r.created_at,
        expires_at: r.expires_at,
    }
}

impl App {
    pub async fn create_client(
        &self,
        p: &Principal,
        req: &CreateClient,
    ) -> Result<CreatedClient, AppError> {
        self.require_global(p, Permission::ClientsWrite)?;
        let name = validate::name("name", &req.name, 100)?;
        if req.expires_at <= self.now() {
            return Err(AppError::Validation(
                "expires_at must be in the future".into(),
            ));
        }
        let bound = match req.project_id {
            Some(project) => Some(self.held_in_project(p, project).await?),
            None => None,
        };
        let scopes = crate::authz::delegated_scopes(p, req.scopes.as_deref(), bound.as_deref())?;
        crate::authz::delegated_expiry(p, Some(req.expires_at))?;
        let client_id = format!(
            "cl_{}",
            &secret::generate(SecretKind::ClientSecret).plaintext[9..33]
        );
        let client_secret = secret::generate(SecretKind::ClientSecret);
        let row = berth_store::credentials::clients::insert(
            self.db(),
            &NewClient {
                id: Uuid::now_v7(),
                client_id: &client_id,
                name: &name,
                owner_id: p.user_id,
                project_id: req.project_id,
                scopes: &scope_names(&scopes),
                grant_types: &[GRANT_CLIENT_CREDENTIALS.to_owned()],
                secret_digest: &client_secret.digest,
                expires_at: req.expires_at,
            },
        )
        .await?;
        let mut event = Event::new("client.created")
            .by(p)
            .client(Some(&client_id))
            .target("client", row.id);
        if let Some(project) = row.project_id {
            event = event.project(project);
        }
        self.audit(event.details(
            serde_json::json!({ "name": name, "scopes": row.scopes, "expires_at": row.expires_at }),
        ))
        .await;
        Ok(CreatedClient {
            client: view(&row),
            client_secret: client_secret.plaintext,
        })
    }

    /// The caller's clients (every user's for platform admins).
    pub async fn list_clients(
        &self,
        p: &Principal,
        limit: Option<i64>,
        offset: Option<i64>,
    ) -> Result<Page<Client>, AppError> {
        self.require_global(p, Permission::ClientsRead)?;
        let (limit, offset) = validate::page(limit, offset)?;
        let owner = if p.is_platform_admin {
            None
        } else {
            Some(p.user_id)
        };
        let count = berth_store::credentials::clients::count_active(self.db(), owner).await?;
        let rows =
            berth_store::credentials::clients::list_active(self.db(), owner, limit, offset).await?;
        Ok(crate::page(
            count,
            limit,
            offset,
            rows.iter().map(view).collect(),
        ))
    }

    /// Revokes a client and everything issued to it.
    pub async fn revoke_client(&self, p: &Principal, client_id: &str) -> Result<(), AppError> {
        self.require_global(p, Permission::ClientsWrite)?;
        let row = berth_store::credentials::clients::find(self.db(), client_id)
            .await?
            .filter(|c| c.revoked_at.is_none() && c.owner_id.is_some())
            .filter(|c| p.is_platform_admin || c.owner_id == Some(p.user_id))
            .ok_or(AppError::NotFound("client"))?;
        let mut tx = self.db().begin().await?;
        berth_store::credentials::clients::revoke(&mut *tx, row.id).await?;
        let grants = berth_store::credentials::grants::revoke_all_of_client(
            &mut *tx,
            &row.client_id,
            "client revoked",
        )
        .await?;
        tx.commit().await?;
        // Client-credential tokens carry the client's id as their credential id.
        self.forget_credential(row.id).await?;
        for g in grants {
            self.forget_credential(g).await?;
        }
        self.audit(
            Event::new("client.revoked")
                .by(p)
                .client(Some(&row.client_id))
                .target("client", row.id),
        )
        .await;
        Ok(())
    }
}
