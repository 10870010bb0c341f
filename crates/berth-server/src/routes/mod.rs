//! HTTP handlers, one module per resource. Each handler parses, calls the app layer and maps
//! the result; nothing else.

pub mod auth;
pub mod meta;
pub mod projects;
pub mod users;

use berth_types::PageParams;
