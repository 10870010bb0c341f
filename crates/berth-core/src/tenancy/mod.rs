//! Who uses Berth and how they are grouped: users, projects and their members, and the first
//! administrator created at bootstrap.

pub(crate) mod bootstrap;
pub(crate) mod projects;
pub(crate) mod users;
