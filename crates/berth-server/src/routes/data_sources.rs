//! `/api/v1/data-sources`: external PostgreSQL databases a project imports instances from
//! (`POST /api/v1/instances` with `"source": {"data_source_id": …}`).

use axum::extract::State;
use axum::http::StatusCode;
use berth_types::{
    Accepted, CreateDataSource, DataSource, DataSourceQuery, DataSourceTest, ErrorBody,
    ImportInstance, Page, UpdateDataSource,
};
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{Auth, Json, Path, Query};
use crate::state::AppState;

/// Data sources of the projects the caller may see.
#[utoipa::path(get, path = "/api/v1/data-sources", operation_id = "list_data_sources", tag = "data-sources", params(DataSourceQuery),
    responses((status = 200, body = Page<DataSource>), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "`project_id` names no project the caller may see")),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn list(
    State(s): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<DataSourceQuery>,
) -> ApiResult<axum::Json<Page<DataSource>>> {
    let page = s.app.list_data_sources(&p, &q).await?;
    Ok(axum::Json(s.page("/api/v1/data-sources", page)))
}

/// Adds a data source; its password is sealed and never shown again.
#[utoipa::path(post, path = "/api/v1/data-sources", operation_id = "create_data_source", tag = "data-sources", request_body = CreateDataSource,
    responses((status = 201, body = DataSource), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "the name is taken in the project")),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn create(
    State(s): State<AppState>,
    Auth(p): Auth,
    Json(req): Json<CreateDataSource>,
) -> ApiResult<(StatusCode, axum::Json<DataSource>)> {
    let ds = s.app.create_data_source(&p, &req).await?;
    Ok((StatusCode::CREATED, axum::Json(ds)))
}

/// One data source (without its password).
#[utoipa::path(get, path = "/api/v1/data-sources/{id}", operation_id = "get_data_source", tag = "data-sources", params(("id" = Uuid, Path)),
    responses((status = 200, body = DataSource), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn get(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<DataSource>> {
    Ok(axum::Json(s.app.get_data_source(&p, id).await?))
}

/// Changes some of a data source's fields; a changed connection forgets the last test.
#[utoipa::path(patch, path = "/api/v1/data-sources/{id}", operation_id = "update_data_source", tag = "data-sources", params(("id" = Uuid, Path)),
    request_body = UpdateDataSource,
    responses((status = 200, body = DataSource), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn update(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
    Json(req): Json<UpdateDataSource>,
) -> ApiResult<axum::Json<DataSource>> {
    Ok(axum::Json(s.app.update_data_source(&p, id, &req).await?))
}

/// Removes a data source (instances imported from it stay).
#[utoipa::path(delete, path = "/api/v1/data-sources/{id}", operation_id = "delete_data_source", tag = "data-sources", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "an import from it is running")),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn delete(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    s.app.delete_data_source(&p, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces the running instance's database with a copy of a data source's (202: an `import`
/// job; connections to the database are ended while it is replaced).
#[utoipa::path(post, path = "/api/v1/instances/{id}/import", operation_id = "import_into_instance", tag = "data-sources", params(("id" = Uuid, Path)),
    request_body = ImportInstance,
    responses((status = 202, body = Accepted), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the instance is not running, is busy, or has deletion protection on")),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn import_into(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
    Json(req): Json<ImportInstance>,
) -> ApiResult<(StatusCode, axum::Json<Accepted>)> {
    let accepted = s.app.import_into_instance(&p, id, &req).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(accepted)))
}

/// Connects to the data source from where instances run and reports its server version and
/// size, or which step failed and why (`[instances] data_source_timeout_seconds` bounds it).
/// A failed connection is a 200 with `ok: false`: the test ran.
#[utoipa::path(post, path = "/api/v1/data-sources/{id}/test", operation_id = "test_data_source", tag = "data-sources", params(("id" = Uuid, Path)),
    responses((status = 200, body = DataSourceTest), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn test(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<DataSourceTest>> {
    Ok(axum::Json(s.app.test_data_source(&p, id).await?))
}
