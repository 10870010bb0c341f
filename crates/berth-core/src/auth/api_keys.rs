//! API keys: long-lived secrets that act as their owner, narrowed by scopes.

use berth_auth::secret::{self, SecretKind};
use berth_store::credentials::api_keys::{ApiKeyRow, NewApiKey};
use berth_types::{ApiKey, CreateApiKey, CreatedApiKey, Page, Permission};
use uuid::Uuid;

use crate::audit::Event;
use crate::authz::principal::scope_names;
use crate::{validate, App, AppError, Principal};

fn view(row: ApiKeyRow) -> ApiKey {
    ApiKey {
        id: row.id,
        name: row.name,
        prefix: row.display_prefix,
        scopes: row.scopes,
        created_at: row.created_at,
        expires_at: row.expires_at,
        last_used_at: row.last_used_at,
    }
}

impl App {
    /// Creates a key for the caller. A key can never carry a scope the creating credential
    /// lacks, so a narrowed key cannot mint a broader one.
    pub async fn create_api_key(
        &self,
        p: &Principal,
        req: &CreateApiKey,
    ) -> Result<CreatedApiKey, AppError> {
        self.require_global(p, Permission::ApiKeysWrite)?;
        let name = validate::name("name", &req.name, 100)?;
        if req.expires_at.is_some_and(|e| e <= self.now()) {
            return Err(AppError::Validation(
                "expires_at must be in the future".into(),
            ));
        }
        let scopes = crate::authz::delegated_scopes(p, req.scopes.as_deref(), None)?;
        crate::authz::delegated_expiry(p, req.expires_at)?;
        let secret = secret::generate(SecretKind::ApiKey);
        let row = berth_store::credentials::api_keys::insert(
            self.db(),
            &NewApiKey {
                id: Uuid::now_v7(),
                user_id: p.user_id,
                name: &name,
                digest: &secret.digest,
                display_prefix: &secret.display_prefix,
                scopes: &scope_names(&scopes),
                expires_at: req.expires_at,
            },
        )
        .await?;
        self.audit(
            Event::new("api_key.created")
                .by(p)
                .target("api_key", row.id)
                .details(serde_json::json!({ "name": row.name, "scopes": row.scopes })),
        )
        .await;
        Ok(CreatedApiKey {
            key: view(row),
            api_key: secret.plaintext,
        })
    }

    pub async fn list_api_keys(
        &self,
        p: &Principal,
        limit: Option<i64>,
        offset: Option<i64>,
    ) -> Result<Page<ApiKey>, AppError> {
        self.require_global(p, Permission::ApiKeysRead)?;
        let (limit, offset) = validate::page(limit, offset)?;
        let count = berth_store::credentials::api_keys::count_active(self.db(), p.user_id).await?;
        let rows =
            berth_store::credentials::api_keys::list_active(self.db(), p.user_id, limit, offset)
                .await?;
        Ok(crate::page(
            count,
            limit,
            offset,
            rows.into_iter().map(view).collect(),
        ))
    }

    pub async fn revoke_api_key(&self, p: &Principal, id: Uuid) -> Result<(), AppError> {
        self.require_global(p, Permission::ApiKeysWrite)?;
        if !berth_store::credentials::api_keys::revoke(self.db(), p.user_id, id).await? {
            return Err(AppError::NotFound("API key"));
        }
        self.forget_credential(id).await?;
        self.audit(Event::new("api_key.revoked").by(p).target("api_key", id))
            .await;
        Ok(())
    }
}
