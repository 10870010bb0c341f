//! Roles and permissions. A project membership has a role; a role grants a fixed set of
//! permissions inside that project. Credentials (tokens, API keys) carry scopes, which are
//! permission names that narrow what the credential may do on its owner's behalf.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A project role, from most to least privileged.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Member,
    Viewer,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Member, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The permissions this role grants inside its project.
    pub fn permissions(self) -> &'static [Permission] {
        use Permission::*;
        match self {
            Role::Viewer => &[ProjectsRead, MembersRead, InstancesRead, JobsRead],
            Role::Member => &[
                ProjectsRead,
                MembersRead,
                InstancesRead,
                InstancesWrite,
                JobsRead,
            ],
            Role::Admin => &[
                ProjectsRead,
                ProjectsWrite,
                MembersRead,
                MembersWrite,
                InstancesRead,
                InstancesWrite,
                JobsRead,
                AuditRead,
            ],
            Role::Owner => &[
                ProjectsRead,
                ProjectsWrite,
                ProjectsDelete,
                MembersRead,
                MembersWrite,
                InstancesRead,
                InstancesWrite,
                JobsRead,
                AuditRead,
            ],
        }
    }
}

macro_rules! permissions {
    ($($variant:ident = $name:literal: $doc:literal,)*) => {
        /// A permission. Its name (`projects:read`, …) is also the scope that grants it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum Permission {
            $(#[doc = $doc] #[serde(rename = $name)] $variant,)*
        }

        impl Permission {
            pub const ALL: &'static [Permission] = &[$(Permission::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(Permission::$variant => $name,)* }
            }

            pub fn description(self) -> &'static str {
                match self { $(Permission::$variant => $doc,)* }
            }

            pub fn parse(s: &str) -> Option<Permission> {
                match s { $($name => Some(Permission::$variant),)* _ => None }
            }
        }
    };
}

permissions! {
    AccountRead = "account:read": "View one's own account.",
    AccountWrite = "account:write": "Change one's own email or password.",
    UsersRead = "users:read": "List and view all users (platform admins).",
    UsersWrite = "users:write": "Create, change and delete users (platform admins).",
    ProjectsCreate = "projects:create": "Create new projects.",
    ProjectsRead = "projects:read": "View a project.",
    ProjectsWrite = "projects:write": "Rename or describe a project.",
    ProjectsDelete = "projects:delete": "Delete a project.",
    MembersRead = "members:read": "List a project's members.",
    MembersWrite = "members:write": "Add, change and remove a project's members.",
    InstancesRead = "instances:read": "View a project's database instances.",
    InstancesWrite = "instances:write": "Create, change and delete a project's database instances.",
    JobsRead = "jobs:read": "View a project's jobs.",
    ApiKeysRead = "api_keys:read": "List one's own API keys and user tokens.",
    ApiKeysWrite = "api_keys:write": "Create and revoke one's own API keys and user tokens.",
    ClientsRead = "clients:read": "List one's own OAuth API clients.",
    ClientsWrite = "clients:write": "Create and revoke one's own OAuth API clients.",
    AuditRead = "audit:read": "Read the audit log (platform-wide for platform admins, else of projects one administers).",
}

// By hand: utoipa's derive does not see the `serde(rename)` of variants made by the macro, and
// described the Rust names (`UsersRead`) instead of the wire names (`users:read`).
impl utoipa::PartialSchema for Permission {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "A permission. Its name is also the scope that grants it.",
            ))
            .enum_values(Some(Permission::ALL.iter().map(|p| p.as_str())))
            .into()
    }
}

impl ToSchema for Permission {}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Permissions every signed-in user has outside any project.
pub const USER_BASE_PERMISSIONS: &[Permission] = &[
    Permission::AccountRead,
    Permission::AccountWrite,
    Permission::ProjectsCreate,
    Permission::ApiKeysRead,
    Permission::ApiKeysWrite,
    Permission::ClientsRead,
    Permission::ClientsWrite,
];
