//! The only place access decisions are made: project-scoped checks, global (platform) checks,
//! and what a new credential may be granted. Another tenant's project is reported as not found,
//! never as forbidden, so its existence does not leak.
//!
//! A check that passes returns a proof value — [`AuthorizedProject`], [`AuthorizedInstance`] —
//! that only this module can make. Operations that write a project's contents take the id they
//! write from the proof, so a write cannot be reached without the check that guards it.

pub(crate) mod principal;

use berth_types::{Permission, Role};
use uuid::Uuid;

use crate::{App, AppError, Principal};

/// Proof that the caller may exercise one permission in one project, and their standing there.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AuthorizedProject {
    id: Uuid,
    /// None for a platform admin who is not a member.
    role: Option<Role>,
}

impl AuthorizedProject {
    pub(crate) fn id(&self) -> Uuid {
        self.id
    }

    /// Whether the caller may grant or take away ownership here: an owner, or a platform
    /// admin.
    pub(crate) fn may_manage_owners(&self, p: &Principal) -> bool {
        self.role == Some(Role::Owner) || p.is_platform_admin
    }
}

/// Proof that the caller may exercise one permission on one instance (checked on its project),
/// with the instance as it was read for the check.
pub(crate) struct AuthorizedInstance {
    row: berth_store::fleet::instances::InstanceRow,
}

impl AuthorizedInstance {
    pub(crate) fn id(&self) -> Uuid {
        self.row.id
    }

    pub(crate) fn row(&self) -> &berth_store::fleet::instances::InstanceRow {
        &self.row
    }
}

impl App {
    /// Checks that `principal` may exercise `need` in `project`.
    pub(crate) async fn authorize_project(
        &self,
        principal: &Principal,
        project: Uuid,
        need: Permission,
    ) -> Result<AuthorizedProject, AppError> {
        if !principal.reaches(project) {
            return Err(AppError::NotFound("project"));
        }
        let role = berth_store::identity::projects::role_of(self.db(), project, principal.user_id)
            .await?
            .and_then(|r| Role::parse(&r));
        let held = match role {
            _ if principal.is_platform_admin => {
                if role.is_none()
                    && !berth_store::identity::projects::exists(self.db(), project).await?
                {
                    return Err(AppError::NotFound("project"));
                }
                true
            }
            Some(role) => role.permissions().contains(&need),
            None => return Err(AppError::NotFound("project")),
        };
        if !held {
            return Err(AppError::Forbidden(format!(
                "your role in this project does not grant `{need}`"
            )));
        }
        if !principal.has_scope(need) {
            return Err(AppError::forbidden(need));
        }
        Ok(AuthorizedProject { id: project, role })
    }

    /// Checks that `principal` may exercise `need` on instance `id`; another tenant's instance
    /// (or a deleted one) is not found.
    pub(crate) async fn authorize_instance(
        &self,
        principal: &Principal,
        id: Uuid,
        need: Permission,
    ) -> Result<AuthorizedInstance, AppError> {
        let row = berth_store::fleet::instances::get(self.db(), id)
            .await?
            .ok_or(AppError::NotFound("instance"))?;
        match self
            .authorize_project(principal, row.project_id, need)
            .await
        {
            Ok(_) => Ok(AuthorizedInstance { row }),
            Err(AppError::NotFound(_)) => Err(AppError::NotFound("instance")),
            Err(e) => Err(e),
        }
    }

    /// What `p` holds in `project` (for a credential bound to it): its role's permissions, or
    /// everything for a platform admin. Another tenant's project is not found.
    pub(crate) async fn held_in_project(
        &self,
        p: &Principal,
        project: Uuid,
    ) -> Result<Vec<Permission>, AppError> {
        let access = self
            .authorize_project(p, project, Permission::ProjectsRead)
            .await?;
        Ok(match access.role {
            _ if p.is_platform_admin => Permission::ALL.to_vec(),
            Some(role) => role.permissions().to_vec(),
            None => Vec::new(),
        })
    }

    /// Everything the user holds somewhere: all permissions for platform admins, else the base
    /// permissions plus those of every role they have.
    pub(crate) async fn capabilities(
        &self,
        user_id: Uuid,
        is_platform_admin: bool,
    ) -> Result<Vec<Permission>, AppError> {
        if is_platform_admin {
            return Ok(Permission::ALL.to_vec());
        }
        let roles = berth_store::identity::projects::roles_of_user(self.db(), user_id).await?;
        let mut perms: Vec<Permission> = berth_types::USER_BASE_PERMISSIONS.to_vec();
        for role in roles.iter().filter_map(|r| Role::parse(r)) {
            perms.extend_from_slice(role.permissions());
        }
        perms.sort();
        perms.dedup();
        Ok(perms)
    }

    /// The projects whose `need` a list may show: None for all (platform admins), else the
    /// caller's projects whose role grants it (or just `only`, after checking it).
    pub(crate) async fn visible_projects(
        &self,
        p: &Principal,
        need: Permission,
        only: Option<Uuid>,
    ) -> Result<Option<Vec<Uuid>>, AppError> {
        if !p.has_scope(need) {
            return Err(AppError::forbidden(need));
        }
        if let Some(project) = only {
            self.authorize_project(p, project, need).await?;
            return Ok(Some(vec![project]));
        }
        if p.is_platform_admin && p.project_id.is_none() {
            return Ok(None);
        }
        let roles: Vec<&str> = Role::ALL
            .iter()
            .filter(|r| r.permissions().contains(&need))
            .map(|r| r.as_str())
            .collect();
        let mut ids =
            berth_store::identity::projects::ids_with_roles(self.db(), p.user_id, &roles).await?;
        if let Some(only) = p.project_id {
            ids.retain(|id| *id == only);
        }
        Ok(Some(ids))
    }

    /// Access to account `id`: one's own with `own` (`account:*`), anyone's (one's own too) with
    /// the platform-wide `any` (`users:*`, platform admins).
    pub(crate) fn require_account(
        &self,
        p: &Principal,
        id: Uuid,
        own: Permission,
        any: Permission,
    ) -> Result<(), AppError> {
        if id == p.user_id && !p.allows_globally(any) {
            return self.require_global(p, own);
        }
        self.require_global(p, any)
    }

    pub(crate) fn require_global(
        &self,
        principal: &Principal,
        need: Permission,
    ) -> Result<(), AppError> {
        if principal.project_id.is_some() {
            return Err(AppError::Forbidden(
                "this credential is limited to one project".into(),
            ));
        }
        if !principal.is_platform_admin && !berth_types::USER_BASE_PERMISSIONS.contains(&need) {
            return Err(AppError::Forbidden(
                "this requires a platform administrator".into(),
            ));
        }
        if !principal.has_scope(need) {
            return Err(AppError::forbidden(need));
        }
        Ok(())
    }
}

/// Every permission a user of this kind could ever hold: all of them for platform admins, else
/// the base permissions and those of any project role. Credentials may carry these even before
/// the user joins a project; each project checks the user's role there anyway.
pub(crate) fn holdable(is_platform_admin: bool) -> Vec<Permission> {
    if is_platform_admin {
        return Permission::ALL.to_vec();
    }
    let mut perms: Vec<Permission> = berth_types::USER_BASE_PERMISSIONS.to_vec();
    for role in Role::ALL {
        perms.extend_from_slice(role.permissions());
    }
    perms.sort();
    perms.dedup();
    perms
}

/// The scopes of a credential created by `p` (an API key, client or user token): what was asked
/// for, or everything `p` may delegate. Never more than `p`'s own scopes and what its user can
/// hold — in the one project the credential is `bound` to, what the user's role there grants —,
/// so a narrowed credential cannot mint a broader one and nobody can mint a credential for what
/// they could not do themselves (403 at creation, not a credential refused later).
pub(crate) fn delegated_scopes(
    p: &crate::Principal,
    requested: Option<&[String]>,
    bound: Option<&[Permission]>,
) -> Result<std::collections::BTreeSet<Permission>, AppError> {
    let held = match bound {
        Some(perms) => perms.to_vec(),
        None => holdable(p.is_platform_admin),
    };
    let grantable: std::collections::BTreeSet<Permission> = p
        .scopes
        .iter()
        .copied()
        .filter(|s| held.contains(s))
        .collect();
    let Some(names) = requested else {
        return Ok(grantable);
    };
    let wanted = crate::authz::principal::parse_scopes(names.iter().map(String::as_str))
        .map_err(AppError::Validation)?;
    if wanted.is_empty() {
        return Err(AppError::Validation(
            "scopes must not be empty; omit it for all of yours".into(),
        ));
    }
    if let Some(extra) = wanted.iter().find(|s| !grantable.contains(s)) {
        let where_ = if bound.is_some() {
            " in this project"
        } else {
            ""
        };
        return Err(AppError::Forbidden(format!(
            "cannot grant `{extra}`, which you{where_} or this credential lack"
        )));
    }
    Ok(wanted)
}

/// The expiry of a credential created by `p`, checked against the creator's own: a credential
/// that expires cannot mint one that outlives it (or never expires), as scopes cannot be
/// widened. Refused (403, naming the limit) rather than silently shortened, so the caller
/// learns the credential it asked for is not the one it would get. Full sign-ins are
/// unbounded here; `requested` is `None` for "never expires".
pub(crate) fn delegated_expiry(
    p: &crate::Principal,
    requested: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<(), AppError> {
    let Some(limit) = p.delegates_until else {
        return Ok(());
    };
    if requested.is_none_or(|e| e > limit) {
        return Err(AppError::Forbidden(format!(
            "expires_at must be at most {}, when the credential creating it expires",
            limit.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )));
    }
    Ok(())
}
