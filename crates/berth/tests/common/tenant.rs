//! Typed fixtures over `berth-client`: users, projects and a [`Tenant`] (a project with an
//! owner, an admin, a member and a viewer, each with a user and a token) made in one call.
//! Tests that check the exact wire format keep raw HTTP ([`super::Api`], [`super::send`]).

use berth_client::{Berth, Credential, HttpClient};
use berth_types::{
    CreateApiKey, CreateProject, CreateUser, CreatedApiKey, Project, PutMember, Role,
};
use uuid::Uuid;

use super::{unique, Api, TestUser, ADMIN_PASSWORD, USER_PASSWORD};

impl Api {
    /// A typed client of the same server, acting with `credential`.
    pub fn berth(&self, credential: Credential) -> Berth {
        Berth::new(
            HttpClient::new(None).expect("HTTP client"),
            &self.base,
            credential,
        )
    }

    /// A typed client acting with the access token `token`.
    pub fn berth_as(&self, token: &str) -> Berth {
        self.berth(Credential::Bearer(token.to_owned()))
    }
}

/// An access token for `admin`.
pub async fn admin_token(api: &Api) -> String {
    access_token(api, "admin", ADMIN_PASSWORD).await
}

/// An access token for `user`.
pub async fn token_of(api: &Api, user: &TestUser) -> String {
    access_token(api, &user.username, &user.password).await
}

async fn access_token(api: &Api, username: &str, password: &str) -> String {
    api.berth(Credential::None)
        .token(username, password)
        .await
        .unwrap_or_else(|e| panic!("sign-in of {username}: {e}"))
        .access_token
}

/// Creates a user (as the admin whose token is `admin`).
pub async fn create_user(api: &Api, admin: &str, tag: &str) -> TestUser {
    let username = unique(tag);
    let email = format!("{username}@example.com");
    let req = CreateUser {
        username: username.clone(),
        email: email.clone(),
        password: USER_PASSWORD.to_owned(),
        is_platform_admin: false,
    };
    let user = api
        .berth_as(admin)
        .create_user(&req)
        .await
        .unwrap_or_else(|e| panic!("create user {username}: {e}"));
    TestUser {
        id: user.id.to_string(),
        username,
        email,
        password: USER_PASSWORD.to_owned(),
    }
}

/// Creates a project as the holder of `token`; returns it.
pub async fn create_project(api: &Api, token: &str, tag: &str) -> Project {
    let req = CreateProject {
        name: unique(tag),
        description: String::new(),
    };
    api.berth_as(token)
        .create_project(&req)
        .await
        .unwrap_or_else(|e| panic!("create project {}: {e}", req.name))
}

/// Creates an API key as the holder of `token`, limited to `scopes` when given (else every
/// scope of its creator).
pub async fn create_api_key(api: &Api, token: &str, scopes: Option<&[&str]>) -> CreatedApiKey {
    let req = CreateApiKey {
        name: unique("key"),
        expires_at: None,
        scopes: scopes.map(|s| s.iter().map(|&s| s.to_owned()).collect()),
    };
    api.berth_as(token)
        .create_api_key(&req)
        .await
        .unwrap_or_else(|e| panic!("create API key: {e}"))
}

/// A user who owns a project (so holds the project permissions) and a token minted after that:
/// tokens carry only what the user held when they were issued.
pub async fn create_member(api: &Api, admin: &str, tag: &str) -> (TestUser, String, Project) {
    let user = create_user(api, admin, tag).await;
    let first = token_of(api, &user).await;
    let project = create_project(api, &first, tag).await;
    let token = token_of(api, &user).await;
    (user, token, project)
}

/// A user of a [`Tenant`] and an access token minted after they joined.
#[derive(Debug, Clone)]
pub struct TenantUser {
    pub user: TestUser,
    pub token: String,
}

/// A project with one user in each role.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub project: Project,
    pub owner: TenantUser,
    pub admin: TenantUser,
    pub member: TenantUser,
    pub viewer: TenantUser,
}

impl Tenant {
    /// Creates the owner, the project, and an admin, a member and a viewer of it (as the
    /// platform admin whose token is `admin`); names start with `tag`.
    pub async fn new(api: &Api, admin: &str, tag: &str) -> Tenant {
        let (owner, owner_token, project) =
            create_member(api, admin, &format!("{tag}-owner")).await;
        let owner = TenantUser {
            user: owner,
            token: owner_token,
        };
        let mut joined = Vec::new();
        for role in [Role::Admin, Role::Member, Role::Viewer] {
            let tag = format!("{tag}-{}", role.as_str());
            joined.push(join(api, admin, &owner.token, project.id, role, &tag).await);
        }
        let [admin, member, viewer] = <[TenantUser; 3]>::try_from(joined).unwrap();
        Tenant {
            project,
            owner,
            admin,
            member,
            viewer,
        }
    }

    /// The project's id as text (for paths and JSON bodies).
    pub fn id(&self) -> String {
        self.project.id.to_string()
    }

    /// The user who holds `role`.
    pub fn user(&self, role: Role) -> &TenantUser {
        match role {
            Role::Owner => &self.owner,
            Role::Admin => &self.admin,
            Role::Member => &self.member,
            Role::Viewer => &self.viewer,
        }
    }

    /// Adds one more user to the project with `role` (made by the platform admin `admin`).
    pub async fn add(&self, api: &Api, admin: &str, role: Role, tag: &str) -> TenantUser {
        join(api, admin, &self.owner.token, self.project.id, role, tag).await
    }
}

/// A new user made a `role` of `project` by its owner, with a token minted after joining.
async fn join(
    api: &Api,
    admin: &str,
    owner_token: &str,
    project: Uuid,
    role: Role,
    tag: &str,
) -> TenantUser {
    let user = create_user(api, admin, tag).await;
    let id: Uuid = user.id.parse().unwrap();
    api.berth_as(owner_token)
        .put_member(project, id, &PutMember { role })
        .await
        .unwrap_or_else(|e| panic!("make {} a {}: {e}", user.username, role.as_str()));
    let token = token_of(api, &user).await;
    TenantUser { user, token }
}
