//! The OpenAPI document at `/api/openapi.json`: its frame (title, tags, security schemes) and
//! the answers every operation shares. Each route's `#[utoipa::path]` declares what is particular
//! to it (its success bodies, 409s, ...); [`CommonResponses`] then adds, once for every route,
//! the statuses the shared layers can answer (authentication, body and query parsing, rate
//! limits, the store being down), so a new route is described truthfully without repeating
//! them.

use berth_types::{ErrorBody, OAuthErrorBody};
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Berth API", description = "Management API of Berth, a self-hosted control plane for managed PostgreSQL."),
    modifiers(&SecuritySchemes),
    components(schemas(ErrorBody, OAuthErrorBody)),
    tags(
        (name = "auth", description = "Signing in: sessions, tokens, API keys"),
        (name = "oauth", description = "OAuth 2.0 authorization server"),
        (name = "users", description = "User accounts and user tokens"),
        (name = "audit", description = "The audit log"),
        (name = "instances", description = "PostgreSQL instances, regions and the CA certificate"),
        (name = "backups", description = "Backups, backup policies and restore windows; restore and clone with `source` on create"),
        (name = "jobs", description = "Long-running operations"),
        (name = "data-sources", description = "External PostgreSQL databases to import instances from (`source.data_source_id` on create)"),
        (name = "workflows", description = "One instance operation (restart, pause, resume, backup, import) on many instances, named by paths"),
        (name = "projects", description = "Projects (tenants) and members"),
        (name = "operations", description = "Health and metrics"),
        (name = "compat-biganimal", description = "EDB BigAnimal's authentication and projects API; see docs/compatibility.md"),
        (name = "compat-bigid", description = "BigID's sign-in and data-source connections API; see docs/compatibility.md"),
        (name = "compat-aura", description = "Neo4j Aura's provisioning API (tenants are projects, instances are PostgreSQL instances); see docs/compatibility.md"),
        (name = "compat-ccx", description = "Severalnines CCX's authentication API; see docs/compatibility.md"),
        (name = "compat-ngenea", description = "Ngenea Hub's authentication, jobs and workflow API (paths name instances and projects); see docs/compatibility.md"),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "`Api-Key <key>`",
            ))),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("berth_session"))),
        );
    }
}

/// Operations throttled per address or account besides every `/oauth` one: the password
/// sign-ins, and changing one's own password or email (`current_password` is checked like a
/// sign-in).
const RATE_LIMITED: &[&str] = &[
    "login",
    "create_token",
    "ngenea_create_token",
    "update_user",
];

/// Operations answered without Berth's own database; every other one can answer 503 while the
/// store is unreachable (`get_readiness` declares its own).
const WITHOUT_STORE: &[&str] = &[
    "get_health",
    "get_readiness",
    "get_metrics",
    "get_jwks",
    "get_authorization_server_metadata",
    "get_openid_configuration",
    "get_auth_provider",
    "get_ca_certificate",
];

/// Adds to every operation the error answers of the layers it goes through; statuses an
/// operation declares itself are kept. Runs on the finished document (after the routes are
/// merged in), see [`document`].
pub struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            // (CCX's token endpoint is `/oauth/token` under another path.)
            let oauth = path.starts_with("/oauth/") || path == "/api/auth/oauth2/token";
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                add_common_responses(op, oauth);
            }
        }
    }
}

fn add_common_responses(op: &mut Operation, oauth: bool) {
    let id = op.operation_id.clone().unwrap_or_default();
    // The `/oauth` endpoints answer RFC 6749 error bodies, everything else Berth's own.
    let body = if oauth { "OAuthErrorBody" } else { "ErrorBody" };
    let secured = op
        .security
        .as_ref()
        .is_some_and(|reqs| reqs.iter().any(|r| *r != Default::default()));
    let params = op.parameters.as_deref().unwrap_or_default();
    let has = |place: ParameterIn| params.iter().any(|p| p.parameter_in == place);
    let (path_params, query_or_header) = (
        has(ParameterIn::Path),
        has(ParameterIn::Query) || has(ParameterIn::Header),
    );
    let has_body = op.request_body.is_some();
    let mut add = |status: &str, description: &str, header: Option<(&str, Type, &str)>| {
        let mut response = ResponseBuilder::new().description(description).content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(RefOr::Ref(Ref::from_schema_name(body))))
                .build(),
        );
        if let Some((name, ty, about)) = header {
            response = response.header(
                name,
                HeaderBuilder::new()
                    .schema(ObjectBuilder::new().schema_type(ty))
                    .description(Some(about))
                    .build(),
            );
        }
        op.responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::T(response.build()));
    };

    // A path parameter can be malformed too (`%00`, invalid UTF-8), not only absent.
    if has_body || query_or_header || path_params {
        add(
            "400",
            "The request is malformed or a value breaks a rule; the message says which",
            None,
        );
    }
    if secured {
        add(
            "401",
            "No credentials, or credentials that are malformed, expired or revoked",
            Some((
                "WWW-Authenticate",
                Type::String,
                "RFC 6750 challenge: `Bearer realm=\"berth\"`, with `error=\"invalid_token\"` for bad credentials",
            )),
        );
        add(
            "403",
            "The credential's scopes or the caller's role do not allow this, or a cookie-authenticated change came from another origin (CSRF)",
            None,
        );
    }
    if path_params {
        add(
            "404",
            "No such resource, or one the caller may not see (ids that are not UUIDs name nothing)",
            None,
        );
    }
    if has_body {
        add(
            "408",
            "The body did not arrive within `[http] body_timeout_secs`; the connection is closed",
            None,
        );
        add("413", "The body is larger than 64 KiB", None);
        add(
            "415",
            "The body is not of the declared media type (Content-Type)",
            None,
        );
    }
    if oauth || RATE_LIMITED.contains(&id.as_str()) {
        add(
            "429",
            "Too many requests from this address, client or account; retry later",
            Some((
                "Retry-After",
                Type::Integer,
                "Seconds to wait before retrying",
            )),
        );
    }
    if !WITHOUT_STORE.contains(&id.as_str()) {
        add(
            "503",
            "Berth's database is unreachable; retry shortly",
            Some((
                "Retry-After",
                Type::Integer,
                "Seconds to wait before retrying",
            )),
        );
    }
    // Success answers without a word of their own get the status's meaning.
    for (status, response) in op.responses.responses.iter_mut() {
        if let RefOr::T(response) = response {
            if response.description.is_empty() {
                response.description = match status.as_str() {
                    "200" => "OK",
                    "201" => "Created",
                    "202" => "Accepted: the change runs as a job",
                    "204" => "Done; no content",
                    _ => continue,
                }
                .to_owned();
            }
        }
    }
}

/// The served document: the routes' own descriptions completed by [`CommonResponses`].
pub fn document(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    CommonResponses.modify(&mut doc);
    doc
}
