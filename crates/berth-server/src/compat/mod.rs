//! The other platforms' API dialects, each a thin adapter at that platform's own paths over
//! Berth's app layer: requests and answers are translated, and nothing else — authorization,
//! validation, auditing, rate limits and secrets are the same code as Berth's own API. Each can
//! be switched off in `[compat]`; `docs/compatibility.md` lists what each request does and how
//! it differs from the original.

pub mod aura;
pub mod biganimal;
pub mod bigid;
pub mod ccx;
pub mod ngenea;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

/// `[compat]`: which dialects this server speaks (all by default).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompatConfig {
    /// EDB BigAnimal: `/api/v3/auth/provider`, `/api/v3/auth/token`, `/api/v3/projects`.
    pub biganimal: bool,
    /// BigID: `/api/v1/sessions`, `/api/v1/refresh-access-token`, `/api/v1/ds-connections`.
    pub bigid: bool,
    /// Neo4j Aura: `/v1/tenants`, `/v1/instances`.
    pub aura: bool,
    /// Severalnines CCX: `/api/auth/login`, `/api/auth/oauth2/token`, `/api/auth/check`,
    /// `/api/swagger/index.html`.
    pub ccx: bool,
    /// Ngenea Hub: `/api/auth/token`, `/api/auth/token/refresh`, `/api/auth/clientkeys`,
    /// `/api/jobs`, `/api/file/workflow`.
    pub ngenea: bool,
}

impl Default for CompatConfig {
    fn default() -> Self {
        CompatConfig {
            biganimal: true,
            bigid: true,
            aura: true,
            ccx: true,
            ngenea: true,
        }
    }
}

/// Adds the routes of the dialects `cfg` turns on.
pub fn routes(mut api: OpenApiRouter<AppState>, cfg: &CompatConfig) -> OpenApiRouter<AppState> {
    if cfg.biganimal {
        api = api
            .routes(routes!(biganimal::provider))
            .routes(routes!(biganimal::token))
            .routes(routes!(biganimal::projects));
    }
    if cfg.bigid {
        api = api
            .routes(routes!(bigid::sessions))
            .routes(routes!(bigid::refresh_access_token))
            .routes(routes!(bigid::ds_connections));
    }
    if cfg.aura {
        api = api
            .routes(routes!(aura::tenants))
            .routes(routes!(aura::list, aura::create))
            .routes(routes!(aura::get, aura::delete));
    }
    if cfg.ccx {
        api = api
            .routes(routes!(ccx::login))
            .routes(routes!(ccx::token))
            .routes(routes!(ccx::check));
    }
    if cfg.ngenea {
        api = api
            .routes(routes!(ngenea::token))
            .routes(routes!(ngenea::refresh))
            .routes(routes!(ngenea::client_keys))
            .routes(routes!(ngenea::jobs))
            .routes(routes!(ngenea::submit_workflow));
    }
    api
}
