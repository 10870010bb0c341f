//! A typed client for Berth: the management API (`/api/v1`) over the request and response types
//! of `berth-types`, and the OAuth endpoints a client signs in with. The `berth` CLI and Berth's
//! own integration tests use it; it is what a Rust program that manages Berth adds to its
//! `Cargo.toml` (the way kanidm ships `kanidm_client`).
//!
//! ```no_run
//! # async fn example() -> Result<(), berth_client::HttpError> {
//! use berth_client::{Berth, Credential, HttpClient};
//! let http = HttpClient::new(None)?;
//! let berth = Berth::new(http, "http://127.0.0.1:8080", Credential::ApiKey("berth_ak_…".into()));
//! let projects = berth.list_projects(Default::default()).await?;
//! # Ok(()) }
//! ```
//!
//! [`http`] is the transport (JSON, forms, error bodies, discovery); [`Berth`] adds one method
//! per API operation, grouped by area in the modules below, and [`all_pages`] walks a list.
//!
//! Answers from a newer server read fine: unknown fields are ignored, and an instance status, job
//! state or auth method this client does not know reads as `Unknown`. The `*_raw` methods answer
//! with [`Raw`], the typed value together with the JSON document the server sent, for callers
//! that pass the answer on whole (the CLI's `-o json`).

pub mod http;

mod api;
mod auth;
mod backups;
mod config;
mod data_sources;
mod firewall;
mod fleet;
mod stats;
mod tenancy;
mod workflows;

pub use api::{all_pages, Berth, Credential, Raw, PAGE_LIMIT};
pub use auth::RotatedKey;
pub use fleet::{Action, Updated};
pub use http::{ClientAuth, HttpClient, HttpError};
