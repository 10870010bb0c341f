//! Integration tests of the management API: the real `berth` binary on its own PostgreSQL,
//! spoken to over HTTP (the harness and the typed fixtures are in `common`). This is the only
//! integration-test binary of the `berth` crate (each one links the whole server): tests live in
//! one module per area under `tests/api/`, listed here (cargo only builds `tests/*.rs` as test
//! targets, so the areas are modules, not binaries). Add a test to its area's module, or a new
//! area as a new file with one `#[path]` line below.

mod common;

// Credentials: bootstrap, browser sessions, token pairs, expiry, API keys, sign-in throttling,
// bad tokens.
#[path = "api/api_keys.rs"]
mod api_keys;
#[path = "api/bad_tokens.rs"]
mod bad_tokens;
#[path = "api/bootstrap.rs"]
mod bootstrap;
#[path = "api/expiry.rs"]
mod expiry;
#[path = "api/sessions.rs"]
mod sessions;
#[path = "api/throttling.rs"]
mod throttling;
#[path = "api/tokens.rs"]
mod tokens;

// Tenancy: users and projects.
#[path = "api/projects.rs"]
mod projects;
#[path = "api/users.rs"]
mod users;

// The HTTP surface: malformed requests, routes (trailing slashes, request ids), operations
// (health, metrics, docs).
#[path = "api/malformed.rs"]
mod malformed;
#[path = "api/operations.rs"]
mod operations;
#[path = "api/routes.rs"]
mod routes;

// Berth's own store across restarts and crashes.
#[path = "api/store.rs"]
mod store;

// The OAuth 2.0 authorization server (issue 3).
#[path = "api/cli.rs"]
mod cli;
#[path = "api/device.rs"]
mod device;
#[path = "api/exchange.rs"]
mod exchange;
#[path = "api/limits.rs"]
mod limits;
#[path = "api/oauth.rs"]
mod oauth;

// Issue 7: sign-ins under concurrency, scopes that bound, U+0000; the route × principal matrix.
#[path = "api/authz.rs"]
mod authz;
#[path = "api/conflicts.rs"]
mod conflicts;
#[path = "api/route_matrix.rs"]
mod route_matrix;

// Database instances (issue 4).
#[path = "api/instances.rs"]
mod instances;
// Bursts of creates and the spare pool (issue 13).
#[path = "api/bursts.rs"]
mod bursts;

// Berth's own PostgreSQL dying and coming back (issue 7, part 2).
#[path = "api/store_outage.rs"]
mod store_outage;

// Slow and idle connections, bounded logs (issue 7).
#[path = "api/connections.rs"]
mod connections;

// The OpenAPI document, checked by a validator, a client generator and schemathesis (issue 7).
#[path = "api/openapi.rs"]
mod openapi;

// Review of issue 7: a busy pool is not a dead store; credentials cannot outlive their creator.
#[path = "api/busy_pool.rs"]
mod busy_pool;
#[path = "api/delegation.rs"]
mod delegation;

// Backups, point-in-time recovery, restore and clone with pgBackRest (issue 9).
#[path = "api/backup_ops.rs"]
mod backup_ops;
#[path = "api/backups.rs"]
mod backups;
#[path = "api/cli_backups.rs"]
mod cli_backups;

// Operating an instance (issue 10): firewall rules, configuration, users and databases.
#[path = "api/config.rs"]
mod config;
#[path = "api/db_users.rs"]
mod db_users;
#[path = "api/firewall.rs"]
mod firewall;
#[path = "api/operate_crash.rs"]
mod operate_crash;

// Statistics over time and logs of instances (issue 10).
#[path = "api/stats.rs"]
mod stats;

// The other platforms' dialects (issue 11).
#[path = "api/compat.rs"]
mod compat;
// Data sources and imports from them (issue 11), against a second PostgreSQL server.
#[path = "api/data_sources.rs"]
mod data_sources;
// The web console in headless Chromium (issue 12).
#[path = "api/console.rs"]
mod console;
// Workflows: one operation over many instances named by paths (issue 11).
#[path = "api/workflows.rs"]
mod workflows;
