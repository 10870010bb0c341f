//! Assembles the routes, the OpenAPI document generated from them (see `openapi`), Swagger UI,
//! and the middleware stack.

use axum::extract::DefaultBodyLimit;
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use crate::middleware;
use crate::openapi::{self, ApiDoc};
use crate::routes::{
    activate, audit, auth, backups, clients, config, data_sources, db_users, firewall, instances,
    meta, oauth, projects, stats, users, workflows,
};
use crate::state::AppState;

/// Largest request body accepted; management requests are small.
const BODY_LIMIT: usize = 64 * 1024;

/// The full application router, before trailing-slash normalisation.
pub fn router(state: AppState, compat: &crate::CompatConfig) -> Router {
    let api = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::token))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::check))
        .routes(routes!(auth::create_api_key, auth::list_api_keys))
        .routes(routes!(auth::revoke_api_key))
        .routes(routes!(users::list, users::create))
        .routes(routes!(users::get, users::update, users::delete))
        .routes(routes!(projects::list, projects::create))
        .routes(routes!(projects::get, projects::update, projects::delete))
        .routes(routes!(projects::members))
        .routes(routes!(projects::put_member, projects::remove_member))
        .routes(routes!(oauth::provider))
        .routes(routes!(clients::create, clients::list))
        .routes(routes!(clients::revoke))
        .routes(routes!(
            clients::create_user_token,
            clients::list_user_tokens
        ))
        .routes(routes!(clients::revoke_user_token))
        .routes(routes!(audit::list))
        .routes(routes!(audit::rotate_key))
        .routes(routes!(oauth::token))
        .routes(routes!(oauth::device_code))
        .routes(routes!(oauth::introspect))
        .routes(routes!(oauth::revoke))
        .routes(routes!(oauth::authorization_server_metadata))
        .routes(routes!(oauth::openid_configuration))
        .routes(routes!(instances::regions))
        .routes(routes!(instances::create, instances::list))
        .routes(routes!(
            instances::get,
            instances::update,
            instances::delete
        ))
        .routes(routes!(instances::pause))
        .routes(routes!(instances::resume))
        .routes(routes!(instances::restart))
        .routes(routes!(instances::jobs))
        .routes(routes!(instances::job))
        .routes(routes!(instances::ca_pem))
        .routes(routes!(workflows::create, workflows::list))
        .routes(routes!(workflows::get))
        .routes(routes!(backups::list, backups::create))
        .routes(routes!(backups::get, backups::delete))
        .routes(routes!(backups::get_policy, backups::put_policy))
        .routes(routes!(backups::window))
        .routes(routes!(backups::list_for_project))
        .routes(routes!(firewall::list, firewall::create))
        .routes(routes!(firewall::delete))
        .routes(routes!(config::get, config::update))
        .routes(routes!(db_users::list_users, db_users::create_user))
        .routes(routes!(db_users::delete_user))
        .routes(routes!(db_users::reset_password))
        .routes(routes!(db_users::list_databases, db_users::create_database))
        .routes(routes!(db_users::delete_database))
        .routes(routes!(data_sources::list, data_sources::create))
        .routes(routes!(
            data_sources::get,
            data_sources::update,
            data_sources::delete
        ))
        .routes(routes!(data_sources::test))
        .routes(routes!(data_sources::import_into))
        .routes(routes!(stats::stats))
        .routes(routes!(stats::logs))
        .routes(routes!(meta::healthz))
        .routes(routes!(meta::readyz))
        .routes(routes!(meta::metrics))
        .routes(routes!(meta::jwks));
    let (api, openapi) = crate::compat::routes(api, compat).split_for_parts();

    let openapi = openapi::document(openapi);
    let mut api = api.merge(SwaggerUi::new("/api/docs").url("/api/openapi.json", openapi));
    if compat.ccx {
        // CCX documents its Swagger UI at /api/swagger/index.html: the same UI and document.
        api = api.merge(
            SwaggerUi::new("/api/swagger")
                .config(utoipa_swagger_ui::Config::from("/api/openapi.json")),
        );
    }
    api.merge(crate::console::routes())
        .route("/activate", axum::routing::get(activate::page))
        .route("/activate/login", axum::routing::post(activate::login))
        .route("/activate/decision", axum::routing::post(activate::decide))
        .fallback(middleware::not_found)
        .method_not_allowed_fallback(middleware::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::require_store,
        ))
        .layer(axum::middleware::from_fn(middleware::request_context))
        .with_state(state)
}
