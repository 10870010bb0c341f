//! One table of every endpoint — method, path, the minimum role or scope it needs, whether
//! another tenant gets 404 — drives a route × principal test over every operation of the served
//! OpenAPI document. A route in the document that the table lacks fails the test, so a new route
//! is covered for tenant isolation, roles and scopes as soon as it exists. (Modelled on omicron's
//! `nexus/tests/integration_tests/unauthorized.rs` and `endpoints.rs`.)
//!
//! Principals: no credential, a foreign user (no role in the fixture project), a viewer, a
//! member, an admin and the owner of the project, a platform admin, an API key of the owner
//! narrowed to `projects:read`, and a client-credentials token of a client the owner bound to the
//! project. Each cell checks the status class: 2xx (or a documented non-authorization answer:
//! "allowed"), 401, 403 or 404. Routes that destroy what they act on get a fresh target per
//! principal; instance routes reuse one instance, with deletion protection on.

use std::collections::BTreeSet;

use berth_types::{PutMember, Role};
use serde_json::{json, Value};

use crate::common::*;

/// What a route needs (the minimum role or scope).
#[derive(Debug, Clone, Copy)]
enum Need {
    /// No credential: any principal gets an answer that is neither 403 nor 5xx.
    Public,
    /// Any valid credential.
    Authenticated,
    /// A permission every user holds outside projects (plus the credential's scope); refused
    /// to credentials bound to one project.
    Global(&'static str),
    /// Platform admins only.
    Platform(&'static str),
    /// One's own account with the first scope; anyone's with the second (platform admins).
    Own(&'static str, &'static str),
    /// A permission of a project role, in the fixture project; foreigners get 404.
    Project(&'static str),
    /// A list filtered to what the caller may see: any credential with the scope.
    List(&'static str),
}

/// What the path parameters and body refer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// The fixture project / instance / job, the principal's own user, or nothing.
    Fixture,
    /// A project made for this cell, with the same members.
    FreshProject,
    /// A user made for this cell (platform admin).
    FreshUser,
    /// The principal's own API key / client / user token made for this cell.
    FreshKey,
    FreshClient,
    FreshUserToken,
    /// A credential made for this cell (the route ends it).
    FreshCredential,
    /// A firewall rule of the fixture instance made for this cell.
    FreshRule,
    /// A data source of the fixture project made for this cell.
    FreshDataSource,
}

struct Endpoint {
    method: &'static str,
    /// As in the OpenAPI document.
    path: &'static str,
    need: Need,
    /// Another tenant gets 404 (not 403): true exactly for project routes.
    foreign_404: bool,
    target: Target,
    /// Answers besides 2xx that mean "authorized" (the body is deliberately invalid, or the
    /// instance is busy / protected).
    also: &'static [u16],
}

/// Whether another tenant (a user with no role in the project) gets 404 rather than 403.
const FOREIGN_404: bool = true;
const NO_404: bool = false;

const fn ep(method: &'static str, path: &'static str, need: Need, foreign_404: bool) -> Endpoint {
    Endpoint {
        method,
        path,
        need,
        foreign_404,
        target: Target::Fixture,
        also: &[],
    }
}

impl Endpoint {
    const fn on(mut self, target: Target) -> Self {
        self.target = target;
        self
    }
    const fn also(mut self, statuses: &'static [u16]) -> Self {
        self.also = statuses;
        self
    }
}

use Need::*;
use Target::*;

/// Every endpoint of the API: method, path, minimum role or scope, whether another tenant gets
/// 404; then what the cell acts on and which non-2xx answers still mean "authorized".
#[rustfmt::skip]
const ENDPOINTS: &[Endpoint] = &[
    // Operations and discovery.
    ep("get",    "/healthz",                                   Public,                                NO_404),
    ep("get",    "/readyz",                                    Public,                                NO_404),
    ep("get",    "/metrics",                                   Public,                                NO_404),
    ep("get",    "/.well-known/jwks.json",                     Public,                                NO_404),
    ep("get",    "/.well-known/oauth-authorization-server",    Public,                                NO_404),
    ep("get",    "/.well-known/openid-configuration",          Public,                                NO_404),
    ep("get",    "/api/v1/auth/provider",                      Public,                                NO_404),
    ep("get",    "/api/v1/ca.pem",                             Public,                                NO_404),
    // Signing in (bodies are invalid: these must not need, nor be refused for, a credential).
    ep("post",   "/api/v1/auth/login",                         Public,                                NO_404),
    ep("post",   "/api/v1/auth/token",                         Public,                                NO_404),
    ep("post",   "/api/v1/auth/token/refresh",                 Public,                                NO_404),
    ep("post",   "/api/v1/auth/logout",                        Public,                                NO_404).on(FreshCredential),
    ep("post",   "/oauth/token",                               Public,                                NO_404),
    ep("post",   "/oauth/device/code",                         Public,                                NO_404),
    ep("post",   "/oauth/introspect",                          Public,                                NO_404),
    ep("post",   "/oauth/revoke",                              Public,                                NO_404),
    ep("get",    "/api/v1/auth/check",                         Authenticated,                         NO_404),
    ep("get",    "/api/v1/regions",                            Authenticated,                         NO_404),
    // One's own credentials.
    ep("post",   "/api/v1/auth/api-keys",                      Global("api_keys:write"),              NO_404),
    ep("get",    "/api/v1/auth/api-keys",                      Global("api_keys:read"),               NO_404),
    ep("delete", "/api/v1/auth/api-keys/{id}",                 Global("api_keys:write"),              NO_404).on(FreshKey),
    ep("post",   "/api/v1/auth/clients",                       Global("clients:write"),               NO_404),
    ep("get",    "/api/v1/auth/clients",                       Global("clients:read"),                NO_404),
    ep("delete", "/api/v1/auth/clients/{client_id}",           Global("clients:write"),               NO_404).on(FreshClient),
    // Users: one's own account, and everyone's (platform admins).
    ep("get",    "/api/v1/users",                              Platform("users:read"),                NO_404),
    ep("post",   "/api/v1/users",                              Platform("users:write"),               NO_404),
    ep("delete", "/api/v1/users/{id}",                         Platform("users:write"),               NO_404).on(FreshUser),
    ep("post",   "/api/v1/auth/keys/rotate",                   Platform("users:write"),               NO_404),
    ep("get",    "/api/v1/users/{id}",                         Own("account:read", "users:read"),     NO_404),
    ep("patch",  "/api/v1/users/{id}",                         Own("account:write", "users:write"),   NO_404),
    ep("get",    "/api/v1/users/{id}/tokens",                  Own("api_keys:read", "users:read"),    NO_404),
    ep("post",   "/api/v1/users/{id}/tokens",                  Own("api_keys:write", "users:write"),  NO_404),
    ep("delete", "/api/v1/users/{id}/tokens/{token_id}",       Own("api_keys:write", "users:write"),  NO_404).on(FreshUserToken),
    // Projects.
    ep("get",    "/api/v1/projects",                           List("projects:read"),                 NO_404),
    ep("post",   "/api/v1/projects",                           Global("projects:create"),             NO_404),
    ep("get",    "/api/v1/projects/{id}",                      Project("projects:read"),              FOREIGN_404),
    ep("patch",  "/api/v1/projects/{id}",                      Project("projects:write"),             FOREIGN_404),
    ep("delete", "/api/v1/projects/{id}",                      Project("projects:delete"),            FOREIGN_404).on(FreshProject),
    ep("get",    "/api/v1/projects/{id}/members",              Project("members:read"),               FOREIGN_404),
    ep("put",    "/api/v1/projects/{id}/members/{user_id}",    Project("members:write"),              FOREIGN_404),
    ep("delete", "/api/v1/projects/{id}/members/{user_id}",    Project("members:write"),              FOREIGN_404).on(FreshProject),
    ep("get",    "/api/v1/audit-events",                       Project("audit:read"),                 FOREIGN_404),
    // Instances and jobs (creation gets an invalid name: authorized, then 400; the instance is
    // protected from deletion and may be busy: 409).
    ep("post",   "/api/v1/instances",                          Project("instances:write"),            FOREIGN_404).also(&[400]),
    ep("get",    "/api/v1/instances",                          Project("instances:read"),             FOREIGN_404),
    ep("get",    "/api/v1/instances/{id}",                     Project("instances:read"),             FOREIGN_404),
    ep("patch",  "/api/v1/instances/{id}",                     Project("instances:write"),            FOREIGN_404).also(&[409]),
    ep("delete", "/api/v1/instances/{id}",                     Project("instances:write"),            FOREIGN_404).also(&[409]),
    ep("post",   "/api/v1/instances/{id}/pause",               Project("instances:write"),            FOREIGN_404).also(&[409]),
    ep("post",   "/api/v1/instances/{id}/resume",              Project("instances:write"),            FOREIGN_404).also(&[409]),
    ep("post",   "/api/v1/instances/{id}/restart",             Project("instances:write"),            FOREIGN_404).also(&[409]),
    // Backups (the fixture backup has an incremental one based on it, so deleting it is a 409;
    // taking one may find the instance busy).
    ep("get",    "/api/v1/instances/{id}/backups",             Project("instances:read"),             FOREIGN_404),
    ep("post",   "/api/v1/instances/{id}/backups",             Project("instances:write"),            FOREIGN_404).also(&[409]),
    ep("get",    "/api/v1/instances/{id}/backups/{backup_id}", Project("instances:read"),             FOREIGN_404),
    ep("delete", "/api/v1/instances/{id}/backups/{backup_id}", Project("instances:write"),            FOREIGN_404).also(&[409]),
    ep("get",    "/api/v1/instances/{id}/backup-policy",       Project("instances:read"),             FOREIGN_404),
    ep("put",    "/api/v1/instances/{id}/backup-policy",       Project("instances:write"),            FOREIGN_404),
    ep("get",    "/api/v1/instances/{id}/restore-window",      Project("instances:read"),             FOREIGN_404),
    ep("get",    "/api/v1/projects/{id}/backups",              Project("instances:read"),             FOREIGN_404),
    // Firewall rules (a network that is too broad is authorized, then 400; each cell removes a
    // rule made for it, unless the instance is busy applying another: 409).
    ep("get",    "/api/v1/instances/{id}/firewall-rules",      Project("instances:read"),             FOREIGN_404),
    ep("post",   "/api/v1/instances/{id}/firewall-rules",      Project("instances:write"),            FOREIGN_404).also(&[400]),
    ep("delete", "/api/v1/instances/{id}/firewall-rules/{rule_id}", Project("instances:write"),       FOREIGN_404).on(FreshRule).also(&[409]),
    // Configuration, database users and databases (bodies and names that are authorized, then
    // refused: a value out of range, a bad name, a system role, the instance busy).
    ep("get",    "/api/v1/instances/{id}/config",              Project("instances:read"),             FOREIGN_404),
    ep("patch",  "/api/v1/instances/{id}/config",              Project("instances:write"),            FOREIGN_404).also(&[400]),
    ep("get",    "/api/v1/instances/{id}/users",               Project("instances:read"),             FOREIGN_404),
    ep("post",   "/api/v1/instances/{id}/users",               Project("instances:write"),            FOREIGN_404).also(&[400]),
    ep("delete", "/api/v1/instances/{id}/users/{name}",        Project("instances:write"),            FOREIGN_404).also(&[409]),
    ep("post",   "/api/v1/instances/{id}/users/{name}/reset-password", Project("instances:write"),    FOREIGN_404).also(&[409]),
    ep("get",    "/api/v1/instances/{id}/databases",           Project("instances:read"),             FOREIGN_404),
    ep("post",   "/api/v1/instances/{id}/databases",           Project("instances:write"),            FOREIGN_404).also(&[400]),
    ep("delete", "/api/v1/instances/{id}/databases/{name}",    Project("instances:write"),            FOREIGN_404).also(&[409]),
    // Statistics and logs.
    ep("get",    "/api/v1/instances/{id}/stats",               Project("instances:read"),             FOREIGN_404),
    ep("get",    "/api/v1/instances/{id}/logs",                Project("instances:read"),             FOREIGN_404),
    // Data sources (a create or edit with an invalid name is authorized, then 400; the fixture
    // points at a closed port, so a test answers `ok: false` at once).
    ep("get",    "/api/v1/data-sources",                       List("instances:read"),                NO_404),
    ep("post",   "/api/v1/data-sources",                       Project("instances:write"),            FOREIGN_404).also(&[400]),
    ep("get",    "/api/v1/data-sources/{id}",                  Project("instances:read"),             FOREIGN_404),
    ep("patch",  "/api/v1/data-sources/{id}",                  Project("instances:write"),            FOREIGN_404).also(&[400]),
    ep("delete", "/api/v1/data-sources/{id}",                  Project("instances:write"),            FOREIGN_404).on(FreshDataSource),
    ep("post",   "/api/v1/data-sources/{id}/test",             Project("instances:write"),            FOREIGN_404),
    // (The fixture instance has deletion protection on: an authorized import is a 409.)
    ep("post",   "/api/v1/instances/{id}/import",              Project("instances:write"),            FOREIGN_404).also(&[409]),
    // Other platforms' dialects (compat/): the same rules under their paths. The Aura create
    // names the fixture project with an invalid name: authorized, then 400.
    ep("get",    "/api/v3/auth/provider",                      Public,                                NO_404),
    ep("post",   "/api/v3/auth/token",                         Public,                                NO_404),
    ep("get",    "/api/v3/projects",                           List("projects:read"),                 NO_404),
    ep("post",   "/api/v1/sessions",                           Public,                                NO_404),
    ep("get",    "/api/v1/refresh-access-token",               Public,                                NO_404),
    ep("get",    "/api/v1/ds-connections",                     List("instances:read"),                NO_404),
    ep("get",    "/v1/tenants",                                List("projects:read"),                 NO_404),
    ep("get",    "/v1/instances",                              List("instances:read"),                NO_404),
    ep("post",   "/v1/instances",                              Project("instances:write"),            FOREIGN_404).also(&[400]),
    ep("get",    "/v1/instances/{id}",                         Project("instances:read"),             FOREIGN_404),
    ep("delete", "/v1/instances/{id}",                         Project("instances:write"),            FOREIGN_404).also(&[409]),
    ep("post",   "/api/auth/login",                            Public,                                NO_404),
    ep("post",   "/api/auth/oauth2/token",                     Public,                                NO_404),
    ep("get",    "/api/auth/check",                            Authenticated,                         NO_404),
    ep("get",    "/api/v1/jobs",                               List("jobs:read"),                     NO_404),
    ep("get",    "/api/v1/jobs/{id}",                          Project("jobs:read"),                  FOREIGN_404),
    // Workflows: the body resumes the (running) fixture instance, which skips it; another
    // tenant's path is a 404, a viewer's request a 403.
    ep("post",   "/api/v1/workflows",                          Project("instances:write"),            FOREIGN_404),
    ep("get",    "/api/v1/workflows",                          List("jobs:read"),                     NO_404),
    ep("get",    "/api/v1/workflows/{id}",                     Project("jobs:read"),                  FOREIGN_404),
    // Ngenea Hub's dialect.
    ep("post",   "/api/auth/token",                            Public,                                NO_404),
    ep("post",   "/api/auth/token/refresh",                    Public,                                NO_404),
    ep("post",   "/api/auth/clientkeys",                       Global("api_keys:write"),              NO_404),
    ep("get",    "/api/jobs",                                  List("jobs:read"),                     NO_404),
    ep("post",   "/api/file/workflow",                         Project("instances:write"),            FOREIGN_404),
];

// ---------------------------------------------------------------------------------------------
// Principals
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Anonymous,
    Foreign,
    Viewer,
    Member,
    Admin,
    Owner,
    PlatformAdmin,
    NarrowedKey,
    ClientToken,
}

const EVERYONE: [Who; 9] = [
    Who::Anonymous,
    Who::Foreign,
    Who::Viewer,
    Who::Member,
    Who::Admin,
    Who::Owner,
    Who::PlatformAdmin,
    Who::NarrowedKey,
    Who::ClientToken,
];

const NARROWED_TO: &str = "projects:read";

/// Permissions of a project role (as documented in docs/auth.md).
fn role_grants(role: &str) -> &'static [&'static str] {
    match role {
        "viewer" => &[
            "projects:read",
            "members:read",
            "instances:read",
            "jobs:read",
        ],
        "member" => &[
            "projects:read",
            "members:read",
            "instances:read",
            "instances:write",
            "jobs:read",
        ],
        "admin" => &[
            "projects:read",
            "projects:write",
            "members:read",
            "members:write",
            "instances:read",
            "instances:write",
            "jobs:read",
            "audit:read",
        ],
        "owner" => &[
            "projects:read",
            "projects:write",
            "projects:delete",
            "members:read",
            "members:write",
            "instances:read",
            "instances:write",
            "jobs:read",
            "audit:read",
        ],
        _ => &[],
    }
}

impl Who {
    /// The principal's role in the fixture project.
    fn role(self) -> Option<&'static str> {
        match self {
            Who::Viewer => Some("viewer"),
            Who::Member => Some("member"),
            Who::Admin => Some("admin"),
            Who::Owner | Who::NarrowedKey | Who::ClientToken => Some("owner"),
            _ => None,
        }
    }

    fn has_scope(self, scope: &str) -> bool {
        match self {
            Who::Anonymous => false,
            Who::NarrowedKey => scope == NARROWED_TO,
            // The owner's client, bound to the project without a scope list: the owner role's.
            Who::ClientToken => role_grants("owner").contains(&scope),
            _ => true,
        }
    }

    fn bound(self) -> bool {
        self == Who::ClientToken
    }

    fn platform_admin(self) -> bool {
        self == Who::PlatformAdmin
    }
}

/// The expected class of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Allowed,
    Unauthenticated,
    Forbidden,
    NotFound,
    /// Public routes: anything but 403 and 5xx.
    NotForbidden,
}

fn expected(e: &Endpoint, who: Who) -> Class {
    use Class::*;
    if matches!(e.need, Need::Public) {
        return NotForbidden;
    }
    if who == Who::Anonymous {
        return Unauthenticated;
    }
    let ok = |yes: bool| if yes { Allowed } else { Forbidden };
    match e.need {
        Need::Public => NotForbidden,
        Need::Authenticated => Allowed,
        Need::Global(scope) => ok(!who.bound() && who.has_scope(scope)),
        Need::Platform(scope) => ok(!who.bound() && who.platform_admin() && who.has_scope(scope)),
        Need::Own(own, any) => ok(
            !who.bound() && (who.has_scope(own) || (who.platform_admin() && who.has_scope(any)))
        ),
        Need::List(scope) => ok(who.has_scope(scope)),
        Need::Project(perm) => {
            if who.platform_admin() {
                return Allowed;
            }
            // A credential bound to the fixture project does not reach a fresh one.
            if who.bound() && e.target == Target::FreshProject {
                return NotFound;
            }
            match who.role() {
                None if e.foreign_404 => NotFound,
                None => Forbidden,
                Some(role) => ok(role_grants(role).contains(&perm) && who.has_scope(perm)),
            }
        }
    }
}

fn class_of(e: &Endpoint, status: u16) -> Option<Class> {
    Some(match status {
        200..=299 => Class::Allowed,
        s if e.also.contains(&s) => Class::Allowed,
        401 => Class::Unauthenticated,
        403 => Class::Forbidden,
        404 => Class::NotFound,
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

#[derive(Clone)]
enum Cred {
    None,
    Bearer(String),
    ApiKey(String),
}

struct Fx {
    api: Api,
    admin: String,
    owner: TestUser,
    owner_token: String,
    /// Users by role (viewer, member, admin), their tokens, and a spare viewer.
    members: Vec<(&'static str, TestUser, String)>,
    spare: TestUser,
    foreign: TestUser,
    foreign_token: String,
    admin_id: String,
    project: String,
    narrowed: String,
    client: ApiClient,
    client_token: String,
    instance: String,
    job: String,
    /// A full backup of the instance with an incremental one based on it.
    backup: String,
    /// A data source of the project (at a closed port).
    data_source: String,
    /// A workflow over the instance (its one target skipped).
    workflow: String,
}

/// Another project owned by `fx.owner`, with the fixture's viewer, member and admin and the
/// spare viewer.
async fn project_with_members(
    api: &Api,
    owner_token: &str,
    members: &[(&str, &TestUser)],
) -> String {
    let project = create_project(api, owner_token, "matrix").await;
    let owner = api.berth_as(owner_token);
    for (role, user) in members {
        let role = Role::ALL.into_iter().find(|r| r.as_str() == *role).unwrap();
        owner
            .put_member(project.id, user.id.parse().unwrap(), &PutMember { role })
            .await
            .unwrap_or_else(|e| panic!("make {} a {}: {e}", user.username, role.as_str()));
    }
    project.id.to_string()
}

impl Fx {
    async fn new(api: Api) -> Fx {
        let admin = admin_token(&api).await;
        let tenant = Tenant::new(&api, &admin, "matrix").await;
        let spare = tenant
            .add(&api, &admin, Role::Viewer, "matrix-spare")
            .await
            .user;
        let project = tenant.id();
        let Tenant {
            owner,
            admin: project_admin,
            member,
            viewer,
            ..
        } = tenant;
        let owner_token = owner.token;
        let owner = owner.user;
        let with_tokens: Vec<(&'static str, TestUser, String)> = [
            ("viewer", viewer),
            ("member", member),
            ("admin", project_admin),
        ]
        .into_iter()
        .map(|(role, m)| (role, m.user, m.token))
        .collect();
        let foreign = create_user(&api, &admin, "matrix-foreign").await;
        let foreign_token = token_of(&api, &foreign).await;
        let check = send(api.get("/api/v1/auth/check").bearer_auth(&admin)).await;
        let admin_id = check.json["user"]["id"].as_str().unwrap().to_owned();
        let narrowed = create_api_key(&api, &owner_token, Some(&[NARROWED_TO]))
            .await
            .api_key;
        let client = client_from(
            &api,
            &owner_token,
            &json!({"name": unique("matrix"), "expires_at": in_days(1), "project_id": project}),
        )
        .await;
        let client_token = cc_token(&api, &client).await;
        let r = send(
            api.post_json(
                "/api/v1/instances",
                &json!({"name": unique("matrix").replace('.', "-"), "project_id": project,
                        "engine": "postgres", "version": "15", "region": "local", "memory": "256MB"}),
            )
            .bearer_auth(&owner_token),
        )
        .await;
        r.expect(202);
        let instance = r.json["id"].as_str().unwrap().to_owned();
        let job = r.json["job_id"].as_str().unwrap().to_owned();
        // Deletion protection makes an authorized DELETE a 409 instead of the end of the
        // instance every other cell uses.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let r = send(
                api.patch_json(
                    &format!("/api/v1/instances/{instance}"),
                    &json!({"deletion_protection": true}),
                )
                .bearer_auth(&owner_token),
            )
            .await;
            // Busy creating: poll until the change is taken.
            if r.status == 409 && std::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                continue;
            }
            r.expect(200);
            break;
        }
        let backup = based_on_backup(&api, &owner_token, &instance).await;
        let data_source = closed_port_data_source(&api, &owner_token, &project).await;
        let r = send(
            api.post_json("/api/v1/workflows", &workflow_body(&project, &instance))
                .bearer_auth(&owner_token),
        )
        .await;
        r.expect(202);
        let workflow = r.json["id"].as_str().unwrap().to_owned();
        Fx {
            api,
            admin,
            owner,
            owner_token,
            members: with_tokens,
            spare,
            foreign,
            foreign_token,
            admin_id,
            project,
            narrowed,
            client,
            client_token,
            instance,
            job,
            backup,
            data_source,
            workflow,
        }
    }

    /// A rule on the fixture instance, added by its owner (retrying while it is busy).
    async fn fresh_rule(&self) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let cidr = format!("10.{}.{}.0/24", rand_octet(), rand_octet());
            let r = send(
                self.api
                    .post_json(
                        &format!("/api/v1/instances/{}/firewall-rules", self.instance),
                        &json!({ "cidr": cidr }),
                    )
                    .bearer_auth(&self.owner_token),
            )
            .await;
            if r.status == 409 && std::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
            r.expect(202);
            return r.json["rule"]["id"].as_str().unwrap().to_owned();
        }
    }

    fn cred(&self, who: Who) -> Cred {
        match who {
            Who::Anonymous => Cred::None,
            Who::Foreign => Cred::Bearer(self.foreign_token.clone()),
            Who::Viewer | Who::Member | Who::Admin => Cred::Bearer(self.member(who).2.clone()),
            Who::Owner => Cred::Bearer(self.owner_token.clone()),
            Who::PlatformAdmin => Cred::Bearer(self.admin.clone()),
            Who::NarrowedKey => Cred::ApiKey(self.narrowed.clone()),
            Who::ClientToken => Cred::Bearer(self.client_token.clone()),
        }
    }

    fn member(&self, who: Who) -> &(&'static str, TestUser, String) {
        let role = who.role().unwrap();
        self.members.iter().find(|(r, _, _)| *r == role).unwrap()
    }

    /// The user a principal acts as, and a full token of theirs.
    fn user_of(&self, who: Who) -> (String, String) {
        match who {
            Who::Foreign => (self.foreign.id.clone(), self.foreign_token.clone()),
            Who::Viewer | Who::Member | Who::Admin => {
                let (_, u, t) = self.member(who);
                (u.id.clone(), t.clone())
            }
            Who::PlatformAdmin => (self.admin_id.clone(), self.admin.clone()),
            _ => (self.owner.id.clone(), self.owner_token.clone()),
        }
    }

    async fn fresh_cred(&self, who: Who) -> Cred {
        match who {
            Who::Anonymous => Cred::None,
            Who::NarrowedKey => Cred::ApiKey(
                create_api_key(&self.api, &self.owner_token, Some(&[NARROWED_TO]))
                    .await
                    .api_key,
            ),
            Who::ClientToken => Cred::Bearer(cc_token(&self.api, &self.client).await),
            Who::PlatformAdmin => Cred::Bearer(admin_token(&self.api).await),
            Who::Foreign => Cred::Bearer(token_of(&self.api, &self.foreign).await),
            Who::Owner => Cred::Bearer(token_of(&self.api, &self.owner).await),
            _ => Cred::Bearer(token_of(&self.api, &self.member(who).1).await),
        }
    }

    /// The request of one cell: URL, body, credential.
    async fn request(&self, e: &Endpoint, who: Who) -> (String, Option<Value>, Cred) {
        let (self_id, self_token) = self.user_of(who);
        let mut cred = self.cred(who);
        let mut project = self.project.clone();
        let mut id = String::new();
        let mut second = String::new();
        match e.target {
            Target::Fixture => {}
            Target::FreshProject => {
                let mut roles: Vec<(&str, &TestUser)> =
                    self.members.iter().map(|(r, u, _)| (*r, u)).collect();
                roles.push(("viewer", &self.spare));
                project = project_with_members(&self.api, &self.owner_token, &roles).await;
            }
            Target::FreshUser => {
                id = create_user(&self.api, &self.admin, "matrix-doomed")
                    .await
                    .id;
            }
            Target::FreshKey => {
                id = create_api_key(&self.api, &self_token, None)
                    .await
                    .key
                    .id
                    .to_string()
            }
            Target::FreshClient => {
                id = new_client(&self.api, &self_token, None).await.client_id;
            }
            Target::FreshUserToken => {
                let r = send(
                    self.api
                        .post_json(
                            &format!("/api/v1/users/{self_id}/tokens"),
                            &json!({"name": "matrix", "expires_at": in_days(1)}),
                        )
                        .bearer_auth(&self.admin),
                )
                .await;
                r.expect(201);
                second = r.json["id"].as_str().unwrap().to_owned();
            }
            Target::FreshCredential => cred = self.fresh_cred(who).await,
            Target::FreshRule => second = self.fresh_rule().await,
            Target::FreshDataSource => {
                id = closed_port_data_source(&self.api, &self.owner_token, &self.project).await;
            }
        }
        let p = e.path;
        let url = match p {
            _ if p.starts_with("/api/v1/projects/{id}/members/{user_id}") => {
                format!("/api/v1/projects/{project}/members/{}", self.spare.id)
            }
            _ if p.starts_with("/api/v1/projects/{id}") => p.replace("{id}", &project),
            _ if p.starts_with("/api/v1/users/{id}/tokens/{token_id}") => {
                format!("/api/v1/users/{self_id}/tokens/{second}")
            }
            _ if p.starts_with("/api/v1/users/{id}") && e.target == Target::FreshUser => {
                p.replace("{id}", &id)
            }
            _ if p.starts_with("/api/v1/users/{id}") => p.replace("{id}", &self_id),
            _ if p.starts_with("/api/v1/instances/{id}") => p
                .replace("{id}", &self.instance)
                .replace("{backup_id}", &self.backup)
                .replace("{rule_id}", &second)
                .replace("{name}", "postgres"),
            "/v1/instances/{id}" => p.replace("{id}", &self.instance),
            _ if p.starts_with("/api/v1/data-sources/{id}") => p.replace(
                "{id}",
                if id.is_empty() {
                    &self.data_source
                } else {
                    &id
                },
            ),
            "/api/v1/jobs/{id}" => p.replace("{id}", &self.job),
            "/api/v1/workflows/{id}" => p.replace("{id}", &self.workflow),
            "/api/v1/instances" if e.method == "get" => format!("{p}?project_id={project}"),
            "/api/v1/audit-events" => format!("{p}?project_id={project}"),
            _ => p.replace("{id}", &id).replace("{client_id}", &id),
        };
        assert!(!url.contains('{'), "unresolved parameter in {url}");
        let body = match (e.method, p) {
            ("post", "/api/v1/auth/api-keys" | "/api/auth/clientkeys") => {
                json!({"name": unique("matrix")})
            }
            ("post", "/api/v1/workflows" | "/api/file/workflow") => {
                workflow_body(&project, &self.instance)
            }
            ("post", "/api/v1/auth/clients") => {
                json!({"name": unique("matrix"), "expires_at": in_days(1)})
            }
            ("post", "/api/v1/users") => json!({"username": unique("matrix-new"),
                "email": format!("{}@example.com", unique("matrix-new")), "password": USER_PASSWORD}),
            ("post", "/api/v1/users/{id}/tokens") => {
                json!({"name": "matrix", "expires_at": in_days(1)})
            }
            ("post", "/api/v1/projects") => json!({"name": unique("matrix")}),
            ("patch", "/api/v1/projects/{id}") => json!({"description": "matrix"}),
            ("put", "/api/v1/instances/{id}/backup-policy") => {
                json!({"enabled": true, "full_backup_time": "03:00", "full_backup_days": ["monday"],
                       "differential_every_hours": null, "retention_days": 30,
                       "retention_full_backups": null})
            }
            ("put", _) => json!({"role": "viewer"}),
            ("post", "/api/v1/instances") => {
                json!({"name": "not a valid name", "project_id": project, "engine": "postgres",
                       "version": "15", "region": "local", "memory": "256MB"})
            }
            ("patch", "/api/v1/instances/{id}") => json!({"deletion_protection": true}),
            ("post", "/v1/instances") => {
                json!({"name": "not a valid name", "tenant_id": project, "version": "15",
                       "region": "local", "memory": "256MB", "type": "enterprise-db"})
            }
            ("post", "/api/v1/instances/{id}/firewall-rules") => json!({"cidr": "0.0.0.0/0"}),
            ("patch", "/api/v1/instances/{id}/config") => {
                json!({"parameters": {"work_mem": "4TB"}})
            }
            ("post", "/api/v1/instances/{id}/users") => {
                json!({"name": "Not Valid", "profile": "read_only"})
            }
            ("post", "/api/v1/instances/{id}/databases") => json!({"name": "template1"}),
            ("post", "/api/v1/data-sources") => {
                json!({"name": "not a valid name", "project_id": project, "host": "127.0.0.1",
                       "database": "postgres", "username": "postgres", "password": "x"})
            }
            ("patch", "/api/v1/data-sources/{id}") => json!({"name": "not a valid name"}),
            ("post", "/api/v1/instances/{id}/import") => {
                json!({"data_source_id": self.data_source})
            }
            ("post" | "patch", _) => json!({}),
            _ => return (url, None, cred),
        };
        (url, Some(body), cred)
    }
}

/// A data source of `project` at a port nothing listens on.
async fn closed_port_data_source(api: &Api, token: &str, project: &str) -> String {
    let r = send(
        api.post_json(
            "/api/v1/data-sources",
            &json!({"name": unique("matrix").replace('.', "-"), "project_id": project,
                    "host": "127.0.0.1", "port": 1, "database": "postgres",
                    "username": "postgres", "password": "not-used", "sslmode": "disable"}),
        )
        .bearer_auth(token),
    )
    .await;
    r.expect(201);
    r.json["id"].as_str().unwrap().to_owned()
}

/// Resumes the fixture instance: while it runs, its one target is skipped and nothing changes.
fn workflow_body(project: &str, instance: &str) -> Value {
    json!({"workflow": "resume", "paths": [format!("/projects/{project}/instances/{instance}")],
           "site": "local", "discovery": null})
}

fn rand_octet() -> u8 {
    (uuid::Uuid::new_v4().as_u128() % 256) as u8
}

/// Waits for the instance's first backup, takes an incremental one on it, and returns the
/// first one's id.
async fn based_on_backup(api: &Api, token: &str, instance: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let full = loop {
        let r = send(
            api.get(&format!(
                "/api/v1/instances/{instance}/backups?status=completed"
            ))
            .bearer_auth(token),
        )
        .await;
        r.expect(200);
        if let Some(b) = r.json["results"].as_array().and_then(|a| a.last()) {
            break b["id"].as_str().unwrap().to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no first backup: {}",
            r.json
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let job = loop {
        let r = send(
            api.post_json(
                &format!("/api/v1/instances/{instance}/backups"),
                &json!({"type": "incr"}),
            )
            .bearer_auth(token),
        )
        .await;
        if r.status == 409 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            continue;
        }
        r.expect(202);
        break r.json["job_id"].as_str().unwrap().to_owned();
    };
    loop {
        let r = send(api.get(&format!("/api/v1/jobs/{job}")).bearer_auth(token)).await;
        r.expect(200);
        match r.json["state"].as_str() {
            Some("SUCCESS") => return full,
            Some("PENDING" | "STARTED") if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await
            }
            _ => panic!("the incremental backup did not succeed: {}", r.json),
        }
    }
}

/// The (method, path) of every operation in the served OpenAPI document.
async fn documented(api: &Api) -> BTreeSet<(String, String)> {
    let doc = send(api.get("/api/openapi.json")).await;
    doc.expect(200);
    let mut ops = BTreeSet::new();
    for (path, item) in doc.json["paths"].as_object().expect("paths") {
        for method in [
            "get", "put", "post", "delete", "patch", "head", "options", "trace",
        ] {
            if item.get(method).is_some() {
                ops.insert((method.to_owned(), path.clone()));
            }
        }
    }
    ops
}

#[tokio::test]
async fn every_route_bounds_every_principal() {
    let s = shared();
    // Its own address: the sign-in routes get invalid bodies, never counted failures, but
    // keep clear of the addresses other tests throttle.
    let api = Api::from_ip(s, 143);

    let table: BTreeSet<(String, String)> = ENDPOINTS
        .iter()
        .map(|e| (e.method.to_owned(), e.path.to_owned()))
        .collect();
    assert_eq!(
        table.len(),
        ENDPOINTS.len(),
        "an endpoint is in the table twice"
    );
    let doc = documented(&api).await;
    let missing: Vec<_> = doc.difference(&table).collect();
    assert!(
        missing.is_empty(),
        "routes in the OpenAPI document that the endpoint table of {} lacks: {missing:?}",
        file!()
    );
    let stale: Vec<_> = table.difference(&doc).collect();
    assert!(
        stale.is_empty(),
        "endpoints of the table not in the document: {stale:?}"
    );

    let fx = Fx::new(api.clone()).await;
    let mut failures = Vec::new();
    for e in ENDPOINTS {
        for who in EVERYONE {
            let (url, body, cred) = fx.request(e, who).await;
            let method = reqwest::Method::from_bytes(e.method.to_uppercase().as_bytes()).unwrap();
            let mut rb = api.request(method, &url);
            if let Some(b) = &body {
                rb = rb.json(b);
            }
            rb = match &cred {
                Cred::None => rb,
                Cred::Bearer(t) => rb.bearer_auth(t),
                Cred::ApiKey(k) => rb.api_key(k),
            };
            let r = send(rb).await;
            let want = expected(e, who);
            let got = class_of(e, r.status);
            let fine = match want {
                Class::NotForbidden => r.status != 403 && r.status < 500,
                _ => got == Some(want),
            };
            if !fine {
                failures.push(format!(
                    "{} {url} as {who:?}: expected {want:?}, got {} {}",
                    e.method.to_uppercase(),
                    r.status,
                    r.text.chars().take(200).collect::<String>()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cells are wrong:\n{}",
        failures.len(),
        ENDPOINTS.len() * EVERYONE.len(),
        failures.join("\n")
    );
}
