//! Database users and databases of a local instance, made through the API. Berth marks what it
//! made with a comment on the role or database, so it removes only its own: roles and
//! databases the owner made with SQL are left alone. Profiles are PostgreSQL's predefined
//! roles (`pg_read_all_data`, `pg_write_all_data`, PostgreSQL 14 and later) or membership in
//! the owner role; no user is a superuser or may create roles (up to PostgreSQL 15 CREATEROLE
//! lets a role make itself a superuser).

use berth_types::DbUserProfile;
use sqlx::{ConnectOptions, Connection};

use super::{quote_ident, quote_literal, LocalEngine, SUPERUSER};
use crate::{EngineError, InstanceSpec, ManagedDatabase, ManagedRole};

/// The comment that marks what Berth made.
const MANAGED: &str = "managed by Berth";

/// The memberships each profile has (of `pg_read_all_data`, `pg_write_all_data`, the owner).
fn memberships(profile: DbUserProfile) -> [bool; 3] {
    match profile {
        DbUserProfile::ReadOnly => [true, false, false],
        DbUserProfile::ReadWrite => [true, true, false],
        DbUserProfile::Admin | DbUserProfile::Owner => [false, false, true],
    }
}

/// Runs one statement that takes no parameters.
async fn exec(conn: &mut sqlx::PgConnection, sql: String) -> Result<(), EngineError> {
    sqlx::query(&sql).execute(&mut *conn).await?;
    Ok(())
}

fn checked(name: &str) -> Result<String, EngineError> {
    if name.is_empty()
        || name.len() > 63
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(EngineError::Failed(format!("not a name: {name:?}")));
    }
    Ok(quote_ident(name))
}

impl LocalEngine {
    /// A superuser connection to `database` that keeps its statements (passwords' verifiers
    /// among them) out of the server log whatever the user configured.
    async fn quiet_connection(
        &self,
        s: &InstanceSpec,
        database: &str,
    ) -> Result<sqlx::PgConnection, EngineError> {
        let spec = self.spec(s.id, s.port);
        let mut conn = sqlx::postgres::PgConnectOptions::new()
            .host(&spec.socket_dir.to_string_lossy())
            .port(s.port)
            .username(SUPERUSER)
            .database(database)
            .options(super::UNLIMITED_SESSION)
            .disable_statement_logging()
            .connect()
            .await?;
        for set in [
            "SET log_statement = 'none'",
            "SET log_min_duration_statement = -1",
            "SET log_min_error_statement = 'panic'",
        ] {
            exec(&mut conn, set.to_owned()).await?;
        }
        Ok(conn)
    }

    pub(super) async fn sync_roles_in(
        &self,
        s: &InstanceSpec,
        owner: &str,
        owner_verifier: Option<&str>,
        roles: &[ManagedRole<'_>],
    ) -> Result<(), EngineError> {
        if s.major < 14 && !roles.is_empty() {
            return Err(EngineError::Failed(
                "database users need PostgreSQL 14 or later".into(),
            ));
        }
        let owner_q = checked(owner)?;
        let mut conn = self.quiet_connection(s, "postgres").await?;
        if let Some(v) = owner_verifier {
            exec(
                &mut conn,
                format!("ALTER ROLE {owner_q} PASSWORD {}", quote_literal(v)),
            )
            .await?;
        }
        for r in roles {
            let name = checked(r.name)?;
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
                    .bind(r.name)
                    .fetch_one(&mut conn)
                    .await?;
            let createdb = if r.profile == DbUserProfile::Admin {
                "CREATEDB"
            } else {
                "NOCREATEDB"
            };
            exec(
                &mut conn,
                format!(
                "{} ROLE {name} LOGIN INHERIT NOSUPERUSER NOCREATEROLE NOREPLICATION NOBYPASSRLS \
                 {createdb} PASSWORD {}",
                if exists { "ALTER" } else { "CREATE" },
                quote_literal(r.password_verifier)
            ),
            )
            .await?;
            exec(&mut conn, format!("COMMENT ON ROLE {name} IS '{MANAGED}'")).await?;
            let groups = ["pg_read_all_data", "pg_write_all_data", owner];
            for (group, wanted) in groups.into_iter().zip(memberships(r.profile)) {
                // Only what changes: a needless REVOKE is a WARNING in the instance's log.
                let member: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM pg_auth_members m
                       JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
                      WHERE g.rolname = $1 AND u.rolname = $2)",
                )
                .bind(group)
                .bind(r.name)
                .fetch_one(&mut conn)
                .await?;
                let group = quote_ident(group);
                match (wanted, member) {
                    (true, false) => exec(&mut conn, format!("GRANT {group} TO {name}")).await?,
                    (false, true) => exec(&mut conn, format!("REVOKE {group} FROM {name}")).await?,
                    _ => {}
                }
            }
        }
        let managed: Vec<String> = sqlx::query_scalar(
            "SELECT r.rolname::text FROM pg_roles r JOIN pg_shdescription d
               ON d.objoid = r.oid AND d.classoid = 'pg_authid'::regclass
             WHERE d.description = $1",
        )
        .bind(MANAGED)
        .fetch_all(&mut conn)
        .await?;
        let wanted: Vec<&str> = roles.iter().map(|r| r.name).collect();
        let gone: Vec<String> = managed
            .into_iter()
            .filter(|m| !wanted.contains(&m.as_str()))
            .collect();
        if !gone.is_empty() {
            let databases: Vec<String> = sqlx::query_scalar(
                "SELECT datname::text FROM pg_database WHERE datallowconn ORDER BY datname",
            )
            .fetch_all(&mut conn)
            .await?;
            for name in &gone {
                let role = checked(name)?;
                // What the user owned goes to the owner, in every database, before the role
                // can go.
                for db in &databases {
                    let mut c = self.quiet_connection(s, db).await?;
                    exec(&mut c, format!("REASSIGN OWNED BY {role} TO {owner_q}")).await?;
                    exec(&mut c, format!("DROP OWNED BY {role}")).await?;
                    let _ = c.close().await;
                }
                exec(&mut conn, format!("DROP ROLE IF EXISTS {role}")).await?;
            }
        }
        conn.close().await?;
        Ok(())
    }

    pub(super) async fn sync_databases_in(
        &self,
        s: &InstanceSpec,
        databases: &[ManagedDatabase<'_>],
    ) -> Result<(), EngineError> {
        let mut conn = self.quiet_connection(s, "postgres").await?;
        for d in databases {
            let name = checked(d.name)?;
            let owner = checked(d.owner)?;
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                    .bind(d.name)
                    .fetch_one(&mut conn)
                    .await?;
            if !exists {
                exec(&mut conn, format!("CREATE DATABASE {name} OWNER {owner}")).await?;
            }
            // (A database the owner made with SQL under this name comes under Berth's care.)
            exec(&mut conn, format!("ALTER DATABASE {name} OWNER TO {owner}")).await?;
            exec(
                &mut conn,
                format!("COMMENT ON DATABASE {name} IS '{MANAGED}'"),
            )
            .await?;
        }
        let managed: Vec<String> = sqlx::query_scalar(
            "SELECT d.datname::text FROM pg_database d JOIN pg_shdescription c
               ON c.objoid = d.oid AND c.classoid = 'pg_database'::regclass
             WHERE c.description = $1",
        )
        .bind(MANAGED)
        .fetch_all(&mut conn)
        .await?;
        let wanted: Vec<&str> = databases.iter().map(|d| d.name).collect();
        let gone: Vec<String> = managed
            .into_iter()
            .filter(|m| !wanted.contains(&m.as_str()))
            .collect();
        for name in &gone {
            exec(
                &mut conn,
                format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", checked(name)?),
            )
            .await?;
        }
        conn.close().await?;
        Ok(())
    }
}
