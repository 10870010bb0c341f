//! Workflows: one instance operation (restart, pause, resume, backup, import) started on many
//! instances, named by paths, as Ngenea Hub runs a workflow over many paths. Nothing here
//! operates an instance: each target goes through the operation's own entry point
//! ([`App::start_action`], [`App::start_backup`], [`App::start_import`]) as the caller, so
//! authorization, validation, locking, jobs and audit are those of the instance's own route.
//!
//! A request is refused as a whole (nothing is started) when it is malformed, names nothing the
//! caller can see (404), or names an instance the caller may see but not change (403: a
//! workflow does not do half of what its caller may not do). Past that, each target has its own
//! outcome: a job, or the reason it has none (`skipped` when the instance cannot take the
//! operation now, `not_found` for a path that names nothing the caller can see). The workflow's
//! state is derived from its targets' jobs whenever it is read.

use std::collections::BTreeMap;

use berth_store::fleet::instances::{InstanceFilter, InstanceRow};
use berth_store::fleet::workflows::{NewTarget, TargetRow, WorkflowRow};
use berth_types::{
    CreateBackup, CreateWorkflow, Discovery, Page, PageParams, Permission, TargetOutcome,
    TargetState, Workflow, WorkflowKind, WorkflowState, WorkflowTarget,
};
use uuid::Uuid;

use super::instances::truncate;
use crate::audit::Event;
use crate::{validate, App, AppError, Principal};

/// Paths one request may name.
const MAX_PATHS: usize = 100;
/// Targets one workflow may have, after discovery.
const MAX_TARGETS: usize = 500;

/// A path, understood.
enum Named {
    Instance { project: String, instance: String },
    Project { project: String },
}

/// One target before it is started: the path it came from and the instance, if one was found.
struct Candidate {
    path: String,
    instance: Option<InstanceRow>,
    /// Why there is no instance (None: there is one).
    missing: Option<(TargetOutcome, String)>,
}

fn parse_path(raw: &str, discovery: Option<Discovery>) -> Result<Named, AppError> {
    let malformed = || {
        AppError::Validation(format!(
            "malformed path `{}`: a path is /projects/<project>/instances/<instance> (names or \
             ids), or /projects/<project> with \"discovery\": \"recursive\"",
            truncate(raw)
        ))
    };
    // Control characters (NUL among them) name nothing, and PostgreSQL refuses NUL in text.
    if raw.chars().any(char::is_control) {
        return Err(malformed());
    }
    let rest = raw
        .trim_end_matches('/')
        .strip_prefix("/projects/")
        .ok_or_else(malformed)?;
    let segments: Vec<&str> = rest.split('/').collect();
    if segments.iter().any(|s| s.is_empty() || s.len() > 200) {
        return Err(malformed());
    }
    match segments[..] {
        [project] if discovery == Some(Discovery::Recursive) => Ok(Named::Project {
            project: project.to_owned(),
        }),
        [_] => Err(AppError::Validation(format!(
            "`{}` names a project: add \"discovery\": \"recursive\" to work on all its \
             instances, or name an instance (/projects/<project>/instances/<instance>)",
            truncate(raw)
        ))),
        [project, "instances", instance] => Ok(Named::Instance {
            project: project.to_owned(),
            instance: instance.to_owned(),
        }),
        _ => Err(malformed()),
    }
}

/// What an operation is given besides its instance.
enum Options {
    None,
    /// A backup's body (`type`).
    Backup(CreateBackup),
    /// An import's data source.
    Import(Uuid),
}

/// The operation's options from `fields`: a backup's body (`type`), an import's
/// `data_source_id`, nothing for the others.
fn options(
    kind: WorkflowKind,
    fields: &BTreeMap<String, serde_json::Value>,
) -> Result<Options, AppError> {
    let body = || serde_json::Value::Object(fields.clone().into_iter().collect());
    match kind {
        WorkflowKind::Backup => serde_json::from_value(body())
            .map(Options::Backup)
            .map_err(|e| AppError::Validation(format!("fields of a backup workflow: {e}"))),
        WorkflowKind::Import => serde_json::from_value::<berth_types::ImportInstance>(body())
            .map(|i| Options::Import(i.data_source_id))
            .map_err(|e| {
                AppError::Validation(format!(
                    "fields of an import workflow: {e} (it takes `data_source_id`)"
                ))
            }),
        _ if fields.is_empty() => Ok(Options::None),
        _ => Err(AppError::Validation(format!(
            "a {kind} workflow takes no fields (backup takes `type`, import `data_source_id`)"
        ))),
    }
}

fn not_visible(path: &str) -> Candidate {
    Candidate {
        path: path.to_owned(),
        instance: None,
        missing: Some((
            TargetOutcome::NotFound,
            "no instance you can see has this path".into(),
        )),
    }
}

impl App {
    /// Starts `req.workflow` on every instance its paths name, one job per target.
    pub async fn create_workflow(
        &self,
        p: &Principal,
        req: &CreateWorkflow,
    ) -> Result<Workflow, AppError> {
        let kind = match req.workflow {
            WorkflowKind::Unknown => {
                return Err(AppError::Validation(format!(
                    "unknown workflow; choose one of {}",
                    kinds()
                )))
            }
            k => k,
        };
        let options = options(kind, &req.fields)?;
        if req.paths.is_empty() {
            return Err(AppError::Validation(
                "paths must name at least one instance or project".into(),
            ));
        }
        if req.paths.len() > MAX_PATHS {
            return Err(AppError::Validation(format!(
                "at most {MAX_PATHS} paths per workflow"
            )));
        }
        if let Some(site) = &req.site {
            let regions: Vec<String> = self.regions().into_iter().map(|r| r.id).collect();
            if !regions.contains(site) {
                return Err(AppError::Validation(format!(
                    "unknown site `{}`; the regions are {}",
                    truncate(site),
                    regions.join(", ")
                )));
            }
        }
        // Every path is understood before anything is looked up or started.
        let named = req
            .paths
            .iter()
            .map(|raw| parse_path(raw, req.discovery).map(|n| (raw.clone(), n)))
            .collect::<Result<Vec<_>, _>>()?;
        let candidates = self.resolve(p, named).await?;
        if candidates.iter().all(|c| c.instance.is_none()) {
            return Err(AppError::NotFound("instance"));
        }
        // The caller must be able to do the operation on every instance named: checked before
        // anything is started (each operation checks again).
        for c in &candidates {
            if let Some(row) = &c.instance {
                self.authorize_instance(p, row.id, Permission::InstancesWrite)
                    .await?;
            }
        }
        let mut project_ids: Vec<Uuid> = candidates
            .iter()
            .filter_map(|c| c.instance.as_ref().map(|i| i.project_id))
            .collect();
        project_ids.sort();
        project_ids.dedup();
        let row = WorkflowRow {
            id: Uuid::now_v7(),
            workflow: kind,
            region: req.site.clone(),
            discovery: req.discovery,
            fields: serde_json::Value::Object(req.fields.clone().into_iter().collect()),
            project_ids,
            created_by: Some(p.user_id),
            created_at: self.now(),
        };
        berth_store::fleet::workflows::insert(self.db(), &row).await?;

        let mut accepted = 0;
        for (position, c) in candidates.iter().enumerate() {
            let (outcome, job, error) = match (&c.instance, &c.missing) {
                (_, Some((outcome, why))) => (*outcome, None, Some(why.clone())),
                (None, None) => (TargetOutcome::NotFound, None, None),
                (Some(i), None) => match &req.site {
                    Some(site) if *site != i.region => (
                        TargetOutcome::Skipped,
                        None,
                        Some(format!(
                            "the instance is in region {}, not {site}",
                            i.region
                        )),
                    ),
                    _ => match self.start_target(p, kind, i.id, &options, row.id).await {
                        Ok(job) => (TargetOutcome::Accepted, Some(job), None),
                        // The instance cannot take it now (its status, another job).
                        Err(e @ AppError::Conflict { .. }) => {
                            (TargetOutcome::Skipped, None, Some(e.to_string()))
                        }
                        Err(
                            e @ (AppError::Validation(_)
                            | AppError::Forbidden(_)
                            | AppError::NotFound(_)),
                        ) => (TargetOutcome::Failed, None, Some(e.to_string())),
                        Err(e) => return Err(e),
                    },
                },
            };
            accepted += usize::from(outcome == TargetOutcome::Accepted);
            berth_store::fleet::workflows::insert_target(
                self.db(),
                row.id,
                &NewTarget {
                    position: position as i32,
                    path: &c.path,
                    instance_id: c.instance.as_ref().map(|i| i.id),
                    outcome,
                    job_id: job,
                    error: error.as_deref(),
                },
            )
            .await?;
        }
        // One event in each project's log, so each project's admins see it.
        for project in &row.project_ids {
            self.audit(
                Event::new("workflow.created")
                    .by(p)
                    .project(*project)
                    .target("workflow", row.id)
                    .details(serde_json::json!({
                        "workflow": kind,
                        "targets": candidates.len(),
                        "accepted": accepted,
                    })),
            )
            .await;
        }
        // Shown to its creator as made, whether or not they may read jobs.
        let targets = berth_store::fleet::workflows::targets(self.db(), &[row.id]).await?;
        Ok(view(row, targets))
    }

    /// Starts the operation on one instance, as the instance's own route would.
    async fn start_target(
        &self,
        p: &Principal,
        kind: WorkflowKind,
        instance: Uuid,
        options: &Options,
        workflow: Uuid,
    ) -> Result<Uuid, AppError> {
        match (kind, options) {
            (WorkflowKind::Backup, Options::Backup(backup)) => Ok(self
                .start_backup(p, instance, backup, Some(workflow))
                .await?
                .job_id),
            (WorkflowKind::Import, Options::Import(data_source)) => Ok(self
                .start_import(p, instance, *data_source, Some(workflow))
                .await?
                .job_id),
            (WorkflowKind::Restart | WorkflowKind::Pause | WorkflowKind::Resume, _) => Ok(self
                .start_action(p, instance, kind.as_str(), Some(workflow))
                .await?
                .job_id),
            _ => Err(AppError::Validation("unknown workflow".into())),
        }
    }

    /// The instances the paths name, among those the caller may see; a path that names
    /// nothing visible is a `not_found` target (another tenant's instance included, so that
    /// its existence does not leak). An instance named twice is a target once.
    async fn resolve(
        &self,
        p: &Principal,
        named: Vec<(String, Named)>,
    ) -> Result<Vec<Candidate>, AppError> {
        let visible = self
            .visible_projects(p, Permission::InstancesRead, None)
            .await?;
        let mut out: Vec<Candidate> = Vec::new();
        for (raw, n) in named {
            let project_segment = match &n {
                Named::Instance { project, .. } | Named::Project { project } => project.clone(),
            };
            let project = match Uuid::parse_str(&project_segment) {
                Ok(id) => Some(id),
                Err(_) => {
                    berth_store::identity::projects::id_by_name(self.db(), &project_segment).await?
                }
            }
            .filter(|id| visible.as_ref().is_none_or(|v| v.contains(id)));
            let Some(project) = project else {
                out.push(not_visible(&raw));
                continue;
            };
            let filter = InstanceFilter {
                projects: visible.clone(),
                project_id: Some(project),
                ..InstanceFilter::default()
            };
            match n {
                Named::Instance { instance, .. } => {
                    let row = match Uuid::parse_str(&instance) {
                        Ok(id) => berth_store::fleet::instances::get(self.db(), id)
                            .await?
                            .filter(|r| r.project_id == project),
                        Err(_) => {
                            let filter = InstanceFilter {
                                name: Some(instance.clone()),
                                ..filter
                            };
                            berth_store::fleet::instances::list(self.db(), &filter, 1, 0)
                                .await?
                                .into_iter()
                                .next()
                        }
                    };
                    match row {
                        Some(row) => out.push(Candidate {
                            path: raw,
                            instance: Some(row),
                            missing: None,
                        }),
                        None => out.push(not_visible(&raw)),
                    }
                }
                Named::Project { .. } => {
                    let rows = berth_store::fleet::instances::list(
                        self.db(),
                        &filter,
                        MAX_TARGETS as i64 + 1,
                        0,
                    )
                    .await?;
                    if rows.is_empty() {
                        out.push(Candidate {
                            path: raw,
                            instance: None,
                            missing: Some((
                                TargetOutcome::Skipped,
                                "the project has no instances".into(),
                            )),
                        });
                    }
                    for row in rows {
                        out.push(Candidate {
                            path: format!("/projects/{project_segment}/instances/{}", row.name),
                            instance: Some(row),
                            missing: None,
                        });
                    }
                }
            }
            if out.len() > MAX_TARGETS {
                return Err(AppError::Validation(format!(
                    "at most {MAX_TARGETS} targets per workflow; name fewer instances or projects"
                )));
            }
        }
        // An instance named twice (directly, or also through its project) is worked on once.
        let mut seen = std::collections::HashSet::new();
        for c in &mut out {
            if let Some(row) = &c.instance {
                if !seen.insert(row.id) {
                    c.missing = Some((
                        TargetOutcome::Skipped,
                        "the instance is named by an earlier path of this workflow".into(),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// The workflows the caller may see (those whose every project's jobs they may read),
    /// newest first.
    pub async fn list_workflows(
        &self,
        p: &Principal,
        q: &PageParams,
    ) -> Result<Page<Workflow>, AppError> {
        let (limit, offset) = validate::page(q.limit, q.offset)?;
        let projects = self.visible_projects(p, Permission::JobsRead, None).await?;
        let count = berth_store::fleet::workflows::count(self.db(), projects.as_deref()).await?;
        let rows =
            berth_store::fleet::workflows::list(self.db(), projects.as_deref(), limit, offset)
                .await?;
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let mut targets: BTreeMap<Uuid, Vec<TargetRow>> = BTreeMap::new();
        for t in berth_store::fleet::workflows::targets(self.db(), &ids).await? {
            targets.entry(t.workflow_id).or_default().push(t);
        }
        let results = rows
            .into_iter()
            .map(|r| {
                let ts = targets.remove(&r.id).unwrap_or_default();
                view(r, ts)
            })
            .collect();
        Ok(crate::page(count, limit, offset, results))
    }

    /// One workflow and where each of its targets is; 404 unless the caller may read the jobs
    /// of every project it touches.
    pub async fn get_workflow(&self, p: &Principal, id: Uuid) -> Result<Workflow, AppError> {
        let row = berth_store::fleet::workflows::get(self.db(), id)
            .await?
            .ok_or(AppError::NotFound("workflow"))?;
        if row.project_ids.is_empty() && !p.is_platform_admin {
            return Err(AppError::NotFound("workflow"));
        }
        for project in &row.project_ids {
            match self
                .authorize_project(p, *project, Permission::JobsRead)
                .await
            {
                Ok(_) => {}
                Err(AppError::NotFound(_)) => return Err(AppError::NotFound("workflow")),
                Err(e) => return Err(e),
            }
        }
        let targets = berth_store::fleet::workflows::targets(self.db(), &[id]).await?;
        Ok(view(row, targets))
    }
}

fn kinds() -> String {
    WorkflowKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn view(row: WorkflowRow, targets: Vec<TargetRow>) -> Workflow {
    let targets: Vec<WorkflowTarget> = targets
        .into_iter()
        .map(|t| WorkflowTarget {
            state: TargetState::of(t.outcome, t.job_state),
            path: t.path,
            instance_id: t.instance_id,
            job_id: t.job_id,
            job_state: t.job_state,
            error: t.error.or(t.job_error),
        })
        .collect();
    let mut counts: BTreeMap<String, i64> = TargetState::ALL
        .iter()
        .map(|s| (s.to_string(), 0))
        .collect();
    for t in &targets {
        *counts.entry(t.state.to_string()).or_default() += 1;
    }
    Workflow {
        id: row.id,
        workflow: row.workflow,
        state: WorkflowState::of(targets.iter().map(|t| t.state)),
        site: row.region,
        discovery: row.discovery,
        fields: serde_json::from_value(row.fields).unwrap_or_default(),
        counts,
        targets,
        created_by: row.created_by,
        created_at: row.created_at,
    }
}
