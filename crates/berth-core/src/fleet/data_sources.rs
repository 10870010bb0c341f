//! Data sources: the external PostgreSQL databases a project imports instances from (BigID's
//! "data-source connections"). They belong to a project and follow its roles like its
//! instances do (`instances:read` to see them, `instances:write` to change or test them: a
//! test makes Berth connect out, and an import copies the data into an instance the caller
//! gets the password of). The password is sealed with the server's key, bound to the row, and
//! never returned; it is opened only to connect.
//!
//! A host must be a name or an address: never a path, which libpq would take for a Unix
//! socket directory on Berth's own host, where its instances' superuser sockets are.

use std::net::IpAddr;

use berth_store::fleet::data_sources::{DataSourceFields, DataSourceRow};
use berth_types::{
    Accepted, CreateDataSource, DataSource, DataSourceQuery, DataSourceTest, DataSourceTestSummary,
    ImportInstance, InstanceStatus, JobType, Page, Permission, SslMode, UpdateDataSource,
};
use uuid::Uuid;

use super::instances::{instance_name, truncate};
use crate::audit::Event;
use crate::{validate, App, AppError, Principal};

const DEFAULT_PORT: u16 = 5432;
/// A CA bundle larger than this is not a CA bundle.
const MAX_CA_BYTES: usize = 64 * 1024;

/// A data source as read for a check that passed, with its password still sealed.
pub(crate) struct AuthorizedDataSource {
    pub row: DataSourceRow,
}

fn view(r: DataSourceRow) -> DataSource {
    DataSource {
        id: r.id,
        name: r.name,
        project_id: r.project_id,
        host: r.host,
        port: u16::try_from(r.port).unwrap_or(DEFAULT_PORT),
        database: r.database_name,
        username: r.username,
        sslmode: SslMode::parse(&r.sslmode).unwrap_or(SslMode::VerifyFull),
        ca_certificate: r.ca_certificate,
        created_at: r.created_at,
        updated_at: r.updated_at,
        last_test: r.last_tested_at.map(|at| DataSourceTestSummary {
            at,
            ok: r.last_test_ok.unwrap_or(false),
            error: r.last_test_error,
        }),
    }
}

/// A host name or an IP address, as libpq should read it: one host, never a socket path.
fn host(s: &str) -> Result<String, AppError> {
    let s = s.trim();
    if s.parse::<IpAddr>().is_ok() {
        return Ok(s.to_owned());
    }
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if (1..=253).contains(&s.len()) && s.trim_end_matches('.').split('.').all(label_ok) {
        return Ok(s.to_owned());
    }
    Err(AppError::Validation(format!(
        "host `{}` is not a host name or an IP address (one host; not a socket path or a list)",
        truncate(s)
    )))
}

/// A database or user name: what PostgreSQL accepts (1–63 bytes), without control characters.
fn identifier(field: &str, s: &str) -> Result<String, AppError> {
    if (1..=63).contains(&s.len()) && !s.chars().any(char::is_control) {
        return Ok(s.to_owned());
    }
    Err(AppError::Validation(format!(
        "{field} must be 1–63 bytes without control characters"
    )))
}

fn password(s: &str) -> Result<&str, AppError> {
    if (1..=1024).contains(&s.len()) && !s.chars().any(char::is_control) {
        return Ok(s);
    }
    Err(AppError::Validation(
        "password must be 1–1024 bytes without control characters".into(),
    ))
}

fn port(p: u16) -> Result<i32, AppError> {
    if p == 0 {
        return Err(AppError::Validation("port must be 1–65535".into()));
    }
    Ok(i32::from(p))
}

fn ca_certificate(pem: &str) -> Result<Option<String>, AppError> {
    let pem = pem.trim();
    if pem.is_empty() {
        return Ok(None);
    }
    let shaped = pem.len() <= MAX_CA_BYTES
        && pem.starts_with("-----BEGIN CERTIFICATE-----")
        && pem.ends_with("-----END CERTIFICATE-----")
        && !pem
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r'));
    if !shaped {
        return Err(AppError::Validation(format!(
            "ca_certificate must be PEM certificates (-----BEGIN CERTIFICATE----- …), at most {} KiB",
            MAX_CA_BYTES / 1024
        )));
    }
    Ok(Some(format!("{pem}\n")))
}

impl App {
    /// Checks that `p` may exercise `need` on data source `id`; another tenant's is not found.
    pub(crate) async fn authorize_data_source(
        &self,
        p: &Principal,
        id: Uuid,
        need: Permission,
    ) -> Result<AuthorizedDataSource, AppError> {
        let row = berth_store::fleet::data_sources::get(self.db(), id)
            .await?
            .ok_or(AppError::NotFound("data source"))?;
        match self.authorize_project(p, row.project_id, need).await {
            Ok(_) => Ok(AuthorizedDataSource { row }),
            Err(AppError::NotFound(_)) => Err(AppError::NotFound("data source")),
            Err(e) => Err(e),
        }
    }

    fn seal_password(&self, id: Uuid, password: &str) -> Vec<u8> {
        self.keyring().seal(password.as_bytes(), id.as_bytes())
    }

    /// The data source's password, for connecting to it.
    pub(crate) fn open_password(&self, row: &DataSourceRow) -> Result<String, AppError> {
        let plain = self
            .keyring()
            .open(&row.password_sealed, row.id.as_bytes())
            .map_err(|_| {
                AppError::Internal(format!(
                    "the password of data source {} cannot be unsealed (was the server key replaced?)",
                    row.id
                ))
            })?;
        String::from_utf8(plain).map_err(|e| AppError::Internal(e.to_string()))
    }

    pub async fn list_data_sources(
        &self,
        p: &Principal,
        q: &DataSourceQuery,
    ) -> Result<Page<DataSource>, AppError> {
        let (limit, offset) = validate::page(q.limit, q.offset)?;
        let projects = self
            .visible_projects(p, Permission::InstancesRead, q.project_id)
            .await?;
        let count = berth_store::fleet::data_sources::count(self.db(), projects.as_deref()).await?;
        let rows =
            berth_store::fleet::data_sources::list(self.db(), projects.as_deref(), limit, offset)
                .await?;
        Ok(crate::page(
            count,
            limit,
            offset,
            rows.into_iter().map(view).collect(),
        ))
    }

    pub async fn get_data_source(&self, p: &Principal, id: Uuid) -> Result<DataSource, AppError> {
        let ds = self
            .authorize_data_source(p, id, Permission::InstancesRead)
            .await?;
        Ok(view(ds.row))
    }

    pub async fn create_data_source(
        &self,
        p: &Principal,
        req: &CreateDataSource,
    ) -> Result<DataSource, AppError> {
        let project = self
            .authorize_project(p, req.project_id, Permission::InstancesWrite)
            .await?;
        let name = instance_name(&req.name)?;
        let host = host(&req.host)?;
        let port = port(req.port.unwrap_or(DEFAULT_PORT))?;
        let database = identifier("database", &req.database)?;
        let username = identifier("username", &req.username)?;
        let sslmode = req.sslmode.unwrap_or(SslMode::VerifyFull);
        let ca = ca_certificate(req.ca_certificate.as_deref().unwrap_or(""))?;
        let id = Uuid::now_v7();
        let sealed = self.seal_password(id, password(&req.password)?);
        let row = berth_store::fleet::data_sources::insert(
            self.db(),
            id,
            project.id(),
            &DataSourceFields {
                name: &name,
                host: &host,
                port,
                database_name: &database,
                username: &username,
                password_sealed: &sealed,
                sslmode: sslmode.as_str(),
                ca_certificate: ca.as_deref(),
            },
            p.user_id,
        )
        .await
        .map_err(|e| AppError::clash(e, &name))?;
        self.audit(
            Event::new("data_source.created")
                .by(p)
                .project(row.project_id)
                .target("data_source", id)
                .details(
                    serde_json::json!({ "name": name, "host": host, "port": port,
                    "database": database, "username": username, "sslmode": sslmode.as_str() }),
                ),
        )
        .await;
        Ok(view(row))
    }

    pub async fn update_data_source(
        &self,
        p: &Principal,
        id: Uuid,
        req: &UpdateDataSource,
    ) -> Result<DataSource, AppError> {
        let id = self
            .authorize_data_source(p, id, Permission::InstancesWrite)
            .await?
            .row
            .id;
        let mut tx = self.db().begin().await?;
        let old = berth_store::fleet::data_sources::get_for_update(&mut *tx, id)
            .await?
            .ok_or(AppError::NotFound("data source"))?;
        let name = match &req.name {
            Some(n) => instance_name(n)?,
            None => old.name.clone(),
        };
        let host = match &req.host {
            Some(h) => host(h)?,
            None => old.host.clone(),
        };
        let port = match req.port {
            Some(p) => port(p)?,
            None => old.port,
        };
        let database = match &req.database {
            Some(d) => identifier("database", d)?,
            None => old.database_name.clone(),
        };
        let username = match &req.username {
            Some(u) => identifier("username", u)?,
            None => old.username.clone(),
        };
        let sealed = match &req.password {
            Some(pw) => self.seal_password(id, password(pw)?),
            None => old.password_sealed.clone(),
        };
        let sslmode = req
            .sslmode
            .map_or_else(|| old.sslmode.clone(), |m| m.as_str().to_owned());
        let ca = match &req.ca_certificate {
            Some(pem) => ca_certificate(pem)?,
            None => old.ca_certificate.clone(),
        };
        let connection_changed = host != old.host
            || port != old.port
            || database != old.database_name
            || username != old.username
            || req.password.is_some()
            || sslmode != old.sslmode
            || ca != old.ca_certificate;
        let row = berth_store::fleet::data_sources::update(
            &mut *tx,
            id,
            &DataSourceFields {
                name: &name,
                host: &host,
                port,
                database_name: &database,
                username: &username,
                password_sealed: &sealed,
                sslmode: &sslmode,
                ca_certificate: ca.as_deref(),
            },
            connection_changed,
        )
        .await
        .map_err(|e| AppError::clash(e, &name))?;
        tx.commit().await?;
        self.audit(
            Event::new("data_source.updated")
                .by(p)
                .project(row.project_id)
                .target("data_source", id)
                .details(serde_json::json!({
                    "name": name,
                    "password_changed": req.password.is_some(),
                    "connection_changed": connection_changed,
                })),
        )
        .await;
        Ok(view(row))
    }

    /// Removes a data source; refused while an import from it is still running.
    pub async fn delete_data_source(&self, p: &Principal, id: Uuid) -> Result<(), AppError> {
        let ds = self
            .authorize_data_source(p, id, Permission::InstancesWrite)
            .await?;
        let mut tx = self.db().begin().await?;
        berth_store::fleet::data_sources::get_for_update(&mut *tx, ds.row.id)
            .await?
            .ok_or(AppError::NotFound("data source"))?;
        let importing = berth_store::fleet::data_sources::importing(&mut *tx, ds.row.id).await?;
        if let Some(instance) = importing.first() {
            return Err(AppError::conflict(
                "data source",
                format!("instance {instance} is being imported from this data source; delete it or wait for its import to end"),
            ));
        }
        berth_store::fleet::data_sources::delete(&mut *tx, ds.row.id).await?;
        tx.commit().await?;
        self.audit(
            Event::new("data_source.deleted")
                .by(p)
                .project(ds.row.project_id)
                .target("data_source", ds.row.id)
                .details(serde_json::json!({ "name": ds.row.name })),
        )
        .await;
        Ok(())
    }

    /// Replaces a running instance's database with a copy of a data source's (an `import` job):
    /// a refresh of a copy made earlier, say.
    pub async fn import_into_instance(
        &self,
        p: &Principal,
        instance: Uuid,
        req: &ImportInstance,
    ) -> Result<Accepted, AppError> {
        self.start_import(p, instance, req.data_source_id, None)
            .await
    }

    /// [`App::import_into_instance`], for a job that `workflow` starts (None: no workflow).
    pub(crate) async fn start_import(
        &self,
        p: &Principal,
        instance: Uuid,
        data_source: Uuid,
        workflow: Option<Uuid>,
    ) -> Result<Accepted, AppError> {
        let id = self
            .authorize_instance(p, instance, Permission::InstancesWrite)
            .await?
            .id();
        let ds = self
            .authorize_data_source(p, data_source, Permission::InstancesWrite)
            .await?;
        let mut tx = self.db().begin().await?;
        let row = self.lock_instance(&mut tx, id).await?;
        if ds.row.project_id != row.project_id {
            return Err(AppError::Validation(
                "data_source_id is a data source of another project; import from one of the \
                 instance's own project"
                    .into(),
            ));
        }
        if row.status != InstanceStatus::Running {
            return Err(AppError::conflict(
                "instance",
                format!(
                    "cannot import into an instance that is {}; it must be running",
                    row.status
                ),
            ));
        }
        if row.deletion_protection {
            return Err(AppError::conflict(
                "instance",
                "the instance has deletion protection on, and an import replaces its database; \
                 turn the protection off first",
            ));
        }
        let job = self
            .enqueue_in(
                &mut tx,
                &row,
                JobType::Import,
                serde_json::json!({ "data_source_id": ds.row.id, "into_existing": true }),
                Some(p),
                workflow,
            )
            .await?;
        tx.commit().await?;
        self.wake_runners().await;
        self.audit(
            Event::new("instance.import")
                .by(p)
                .project(row.project_id)
                .target("instance", id)
                .details(serde_json::json!({ "data_source": ds.row.id, "workflow_id": workflow })),
        )
        .await;
        self.accepted(id, job, JobType::Import).await
    }

    /// Connects to the data source (from where instances run) and says what it found.
    pub async fn test_data_source(
        &self,
        p: &Principal,
        id: Uuid,
    ) -> Result<DataSourceTest, AppError> {
        let ds = self
            .authorize_data_source(p, id, Permission::InstancesWrite)
            .await?;
        let password = self.open_password(&ds.row)?;
        let started = std::time::Instant::now();
        let newest = self.engine().versions().into_iter().max().unwrap_or(0);
        let probed = self
            .engine()
            .probe(
                external(&ds.row, &password),
                self.instance_settings().data_source_timeout,
            )
            .await?;
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let result = match probed {
            Ok(found) if found.server_major > newest => DataSourceTest {
                ok: false,
                failed_step: Some("version".into()),
                error: Some(format!(
                    "the server runs PostgreSQL {}; this Berth can import from PostgreSQL {newest} and older",
                    found.server_major
                )),
                server_version: Some(found.server_version),
                server_major: Some(found.server_major),
                size_bytes: Some(found.size_bytes),
                tls: Some(found.tls),
                elapsed_ms,
            },
            Ok(found) => DataSourceTest {
                ok: true,
                server_version: Some(found.server_version),
                server_major: Some(found.server_major),
                size_bytes: Some(found.size_bytes),
                tls: Some(found.tls),
                failed_step: None,
                error: None,
                elapsed_ms,
            },
            Err(f) => DataSourceTest {
                ok: false,
                server_version: None,
                server_major: None,
                size_bytes: None,
                tls: None,
                failed_step: Some(f.step.as_str().into()),
                error: Some(f.message),
                elapsed_ms,
            },
        };
        berth_store::fleet::data_sources::set_test(
            self.db(),
            ds.row.id,
            ds.row.updated_at,
            result.ok,
            result.error.as_deref(),
        )
        .await?;
        self.audit(
            Event::new("data_source.tested")
                .by(p)
                .project(ds.row.project_id)
                .target("data_source", ds.row.id)
                .details(serde_json::json!({ "ok": result.ok, "failed_step": result.failed_step })),
        )
        .await;
        Ok(result)
    }
}

/// The engine's view of a data source, with its opened password.
pub(crate) fn external<'a>(
    row: &'a DataSourceRow,
    password: &'a str,
) -> berth_engine::ExternalDatabase<'a> {
    berth_engine::ExternalDatabase {
        host: &row.host,
        port: u16::try_from(row.port).unwrap_or(DEFAULT_PORT),
        database: &row.database_name,
        username: &row.username,
        password,
        sslmode: SslMode::parse(&row.sslmode).unwrap_or(SslMode::VerifyFull),
        ca_certificate: row.ca_certificate.as_deref(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_names_or_addresses_never_paths_or_lists() {
        for ok in [
            "db.example.com",
            "127.0.0.1",
            "::1",
            "2001:db8::5",
            "pg-1",
            "a_b.local.",
        ] {
            assert!(host(ok).is_ok(), "{ok}");
        }
        for bad in [
            "/var/run/postgresql",
            "@abstract",
            "a,b",
            "-x.com",
            "a b",
            "",
            "x..y",
            "h:5432",
        ] {
            assert!(host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ca_certificates_must_look_like_pem() {
        assert_eq!(ca_certificate("  ").unwrap(), None);
        assert!(
            ca_certificate("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----").is_ok()
        );
        assert!(ca_certificate("not a certificate").is_err());
    }
}
