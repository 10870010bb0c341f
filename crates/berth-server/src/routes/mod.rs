//! HTTP handlers, one module per resource. Each handler parses, calls the app layer and maps
//! the result; nothing else.

pub mod activate;
pub mod audit;
pub mod auth;
pub mod backups;
pub mod clients;
pub mod config;
pub mod data_sources;
pub mod db_users;
pub mod firewall;
pub mod instances;
pub mod meta;
pub mod oauth;
pub mod projects;
pub mod stats;
pub mod users;
pub mod workflows;

use berth_types::PageParams;
