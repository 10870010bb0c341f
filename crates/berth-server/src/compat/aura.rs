//! Neo4j Aura's provisioning API (`/v1/tenants`, `/v1/instances`): its `{"data": …}`
//! envelopes and field names over Berth's own operations. A tenant is a project; an instance is
//! a Berth instance (PostgreSQL, so `version`, `region` and `memory` take Berth's values).
//! Authorization, validation, auditing and secrets are Berth's: these handlers only translate.
//! The token comes from `/oauth/token` with client credentials, exactly as Aura's does.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_types::{CreateInstance, ErrorBody, Instance, InstanceQuery, InstanceStatus};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{Auth, Json, Path};
use crate::state::AppState;

/// Aura answers with its data in an envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct Data<T> {
    pub data: T,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuraTenant {
    pub id: Uuid,
    pub name: String,
}

/// Aura's create body. Fields Aura has and Berth does not use (`type`, `cloud_provider`) are
/// echoed back; others it may send are accepted and ignored.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AuraCreateInstance {
    #[schema(example = "instance01")]
    pub name: String,
    /// A PostgreSQL major version this server offers (`GET /api/v1/regions`), e.g. `15`.
    #[schema(example = "15")]
    pub version: String,
    /// A Berth region, e.g. `local`.
    #[schema(example = "local")]
    pub region: String,
    /// A Berth memory size, e.g. `1GB`.
    #[schema(example = "1GB")]
    pub memory: String,
    /// The project to create it in.
    pub tenant_id: Uuid,
    #[serde(default, rename = "type")]
    #[schema(example = "enterprise-db")]
    pub kind: Option<String>,
    #[serde(default)]
    #[schema(example = "gcp")]
    pub cloud_provider: Option<String>,
    /// A Berth storage size (Aura derives storage from memory).
    #[serde(default)]
    pub storage: Option<String>,
}

/// An instance as Aura shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuraInstance {
    pub id: Uuid,
    pub name: String,
    pub tenant_id: Uuid,
    pub cloud_provider: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub region: String,
    /// `postgresql://…?sslmode=verify-full` (Berth's CA: `GET /api/v1/ca.pem`).
    pub connection_url: Option<String>,
    /// Aura's statuses where they exist (`creating`, `running`, `paused`, `pausing`,
    /// `resuming`, `destroying`, `updating`), else Berth's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
}

/// The answer to a create: the instance, its owner and the password (shown only here).
#[derive(Debug, Serialize, ToSchema)]
pub struct AuraCreatedInstance {
    #[serde(flatten)]
    pub instance: AuraInstance,
    pub username: String,
    pub password: String,
}

/// What `type` and `cloud_provider` read as for instances Berth runs.
const KIND: &str = "postgresql";
/// Aura's lists are not paged: Berth's pages are read through.
const PAGE: i64 = 500;
const PROVIDER: &str = "berth";

fn status(s: InstanceStatus) -> String {
    match s {
        InstanceStatus::Restarting | InstanceStatus::Repairing => "updating".into(),
        other => other.to_string(),
    }
}

fn view(i: Instance, detailed: bool) -> AuraInstance {
    AuraInstance {
        id: i.id,
        name: i.name,
        tenant_id: i.project_id,
        cloud_provider: PROVIDER.into(),
        kind: KIND.into(),
        region: i.region,
        connection_url: i.connection_url,
        status: detailed.then(|| status(i.status)),
        memory: detailed.then_some(i.memory),
        storage: detailed.then_some(i.storage),
    }
}

/// The projects the caller may see, as Aura tenants.
#[utoipa::path(get, path = "/v1/tenants", operation_id = "aura_list_tenants", tag = "compat-aura",
    responses((status = 200, body = Data<Vec<AuraTenant>>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn tenants(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<axum::Json<Data<Vec<AuraTenant>>>> {
    let mut data = Vec::new();
    loop {
        let page = s
            .app
            .list_projects(&p, Some(PAGE), Some(data.len() as i64))
            .await?;
        let last = page.next.is_none() || page.results.is_empty();
        data.extend(page.results.into_iter().map(|p| AuraTenant {
            id: p.id,
            name: p.name,
        }));
        if last {
            return Ok(axum::Json(Data { data }));
        }
    }
}

/// The instances the caller may see.
#[utoipa::path(get, path = "/v1/instances", operation_id = "aura_list_instances", tag = "compat-aura",
    responses((status = 200, body = Data<Vec<AuraInstance>>), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn list(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<axum::Json<Data<Vec<AuraInstance>>>> {
    let mut data = Vec::new();
    loop {
        let q = InstanceQuery {
            limit: Some(PAGE),
            offset: Some(data.len() as i64),
            ..InstanceQuery::default()
        };
        let page = s.app.list_instances(&p, &q).await?;
        let last = page.next.is_none() || page.results.is_empty();
        data.extend(page.results.into_iter().map(|i| view(i, false)));
        if last {
            return Ok(axum::Json(Data { data }));
        }
    }
}

/// Creates an instance (202 in Berth's API; Aura answers 202 too) with the owner's password,
/// shown only here; poll `GET /v1/instances/{id}` until `status` is `running`.
#[utoipa::path(post, path = "/v1/instances", operation_id = "aura_create_instance", tag = "compat-aura", request_body = AuraCreateInstance,
    responses((status = 202, body = Data<AuraCreatedInstance>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn create(
    State(s): State<AppState>,
    Auth(p): Auth,
    Json(req): Json<AuraCreateInstance>,
) -> ApiResult<Response> {
    let create = CreateInstance {
        name: req.name,
        project_id: req.tenant_id,
        engine: "postgres".into(),
        version: req.version,
        region: req.region,
        memory: req.memory,
        storage: req.storage,
        source: None,
        firewall_rules: None,
    };
    let created = s.app.create_instance(&p, &create, None).await?;
    let mut instance = view(created.instance.clone(), false);
    // Echo what the request said of the product and the cloud, as Aura does.
    if let Some(kind) = req.kind {
        instance.kind = kind;
    }
    if let Some(provider) = req.cloud_provider {
        instance.cloud_provider = provider;
    }
    Ok(crate::respond::no_store((
        StatusCode::ACCEPTED,
        axum::Json(Data {
            data: AuraCreatedInstance {
                instance,
                username: created.instance.username,
                password: created.password,
            },
        }),
    )))
}

/// One instance, with its status, memory and storage.
#[utoipa::path(get, path = "/v1/instances/{id}", operation_id = "aura_get_instance", tag = "compat-aura", params(("id" = Uuid, Path)),
    responses((status = 200, body = Data<AuraInstance>), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn get(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<Data<AuraInstance>>> {
    let i = s.app.get_instance(&p, id).await?;
    Ok(axum::Json(Data {
        data: view(i, true),
    }))
}

/// Deletes an instance (202; a job; refused with 409 while deletion protection is on).
#[utoipa::path(delete, path = "/v1/instances/{id}", operation_id = "aura_delete_instance", tag = "compat-aura", params(("id" = Uuid, Path)),
    responses((status = 202, body = Data<AuraInstance>), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn delete(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let accepted = s.app.delete_instance(&p, id).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(Data {
            data: view(accepted.instance, true),
        }),
    )
        .into_response())
}
