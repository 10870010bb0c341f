//! Who uses Berth: the `users` table, and `projects` with their `memberships`.

pub mod projects;
pub mod users;
