//! Who is calling: the user behind a credential and what that credential may do.

use std::collections::BTreeSet;

use berth_types::{AuthMethod, Permission};
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: Uuid,
    pub username: String,
    pub is_platform_admin: bool,
    pub method: AuthMethod,
    /// The session, token grant or API key behind this credential.
    pub credential_id: Uuid,
    /// What the credential is limited to; the user's roles limit it further per project.
    pub scopes: BTreeSet<Permission>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The OAuth client the credential was issued to.
    pub client_id: Option<String>,
    /// The one project the credential is limited to.
    pub project_id: Option<Uuid>,
    /// The access token's `jti`, so revoking that one token evicts it.
    pub token_id: Option<Uuid>,
    /// The latest expiry a credential this one creates may have: the API key's, the client's
    /// (for its tokens) or the user-token session's. `None` for full sign-ins and keys that
    /// never expire.
    pub delegates_until: Option<DateTime<Utc>>,
}

impl Principal {
    pub fn has_scope(&self, p: Permission) -> bool {
        self.scopes.contains(&p)
    }

    /// A platform-wide permission: only platform admins hold `users:*`; every user holds the
    /// base permissions; both still need the credential's scope.
    pub fn allows_globally(&self, p: Permission) -> bool {
        let held = self.is_platform_admin || berth_types::USER_BASE_PERMISSIONS.contains(&p);
        held && self.has_scope(p)
    }

    /// Can this credential reach `project` at all (project-limited credentials reach one)?
    pub fn reaches(&self, project: Uuid) -> bool {
        self.project_id.is_none_or(|p| p == project)
    }
}

/// Parses scope names, rejecting unknown ones with a message naming them.
pub fn parse_scopes<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Result<BTreeSet<Permission>, String> {
    let mut set = BTreeSet::new();
    let mut unknown = Vec::new();
    for n in names {
        match Permission::parse(n) {
            Some(p) => {
                set.insert(p);
            }
            None => unknown.push(n.to_owned()),
        }
    }
    if unknown.is_empty() {
        Ok(set)
    } else {
        Err(format!("unknown scope(s): {}", unknown.join(", ")))
    }
}

pub fn scope_names(scopes: &BTreeSet<Permission>) -> Vec<String> {
    scopes.iter().map(|p| p.as_str().to_owned()).collect()
}
