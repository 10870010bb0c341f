//! What the control plane manages inside a running instance: the configuration parameters its
//! users set, and the database users and databases made through the API.

use berth_types::DbUserProfile;

/// A parameter as the running server has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveParameter {
    pub name: String,
    /// As `current_setting()` shows it (`4MB`, `5min`, `on`).
    pub current: String,
    /// Changed in the configuration files, not yet in effect (it needs a restart).
    pub pending_restart: bool,
}

/// A database user the instance must have, with exactly this profile and password.
#[derive(Clone, Copy)]
pub struct ManagedRole<'a> {
    pub name: &'a str,
    pub profile: DbUserProfile,
    pub password_verifier: &'a str,
}

/// Without the verifier.
impl std::fmt::Debug for ManagedRole<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedRole")
            .field("name", &self.name)
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

/// A database the instance must have, owned by `owner`.
#[derive(Debug, Clone, Copy)]
pub struct ManagedDatabase<'a> {
    pub name: &'a str,
    pub owner: &'a str,
}
