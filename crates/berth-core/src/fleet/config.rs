//! An instance's configuration parameters: listing what may be set (with the running server's
//! values), and setting several at once. The store keeps what users set; a `config` job makes
//! the instance run with it, rereading at once what PostgreSQL can reload and, with
//! `"apply": "restart"`, restarting the server for the rest. The memory class's values stay the
//! defaults, so a resize changes every parameter the user did not set and none they did.

use std::collections::BTreeMap;

use berth_engine::Engine;
use berth_store::fleet::instances::InstanceRow;
use berth_types::{
    ApplyMode, ConfigChange, InstanceParameter, InstanceStatus, JobType, Page, Permission,
    UpdateConfig,
};
use uuid::Uuid;

use super::parameters::{self, PARAMETERS};
use crate::audit::Event;
use crate::{App, AppError, Principal};

/// At most this many parameters in one change.
const MAX_PER_CHANGE: usize = 64;

impl App {
    pub async fn get_config(
        &self,
        p: &Principal,
        instance: Uuid,
    ) -> Result<Page<InstanceParameter>, AppError> {
        let authorized = self
            .authorize_instance(p, instance, Permission::InstancesRead)
            .await?;
        let row = authorized.row();
        let class = berth_engine::memory_class(&row.memory)
            .ok_or_else(|| AppError::Internal(format!("bad memory `{}`", row.memory)))?;
        let overrides: BTreeMap<String, String> =
            berth_store::fleet::parameters::list(self.db(), row.id)
                .await?
                .into_iter()
                .collect();
        // The running server's values; none while it is not running (or cannot say).
        let names: Vec<&str> = PARAMETERS.iter().map(|p| p.name).collect();
        let live = match crate::jobs::instance_spec(row) {
            Ok(spec) => self
                .engine()
                .parameters(&spec, &names)
                .await
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let results: Vec<InstanceParameter> = PARAMETERS
            .iter()
            .map(|param| {
                let default = param.default_for(class);
                let set = overrides.get(param.name);
                let running = live.iter().find(|l| l.name == param.name);
                let (min, max) = param.bounds();
                InstanceParameter {
                    name: param.name.to_owned(),
                    kind: param.type_name().to_owned(),
                    unit: param.unit().map(str::to_owned),
                    value: set.cloned().unwrap_or_else(|| default.clone()),
                    source: if set.is_some() { "user" } else { "default" }.to_owned(),
                    default,
                    min,
                    max,
                    allowed_values: param.allowed_values(),
                    restart_required: param.restart,
                    current: running.map(|l| l.current.clone()),
                    pending_restart: running.is_some_and(|l| l.pending_restart),
                    description: param.description.to_owned(),
                }
            })
            .collect();
        Ok(crate::page(results.len() as i64, 500, 0, results))
    }

    /// Validates every value first (all or nothing), saves them and enqueues the `config` job,
    /// together.
    pub async fn update_config(
        &self,
        p: &Principal,
        instance: Uuid,
        req: &UpdateConfig,
    ) -> Result<ConfigChange, AppError> {
        let id = self
            .authorize_instance(p, instance, Permission::InstancesWrite)
            .await?
            .id();
        if req.parameters.is_empty() {
            return Err(AppError::Validation(
                "name at least one parameter in `parameters`".into(),
            ));
        }
        if req.parameters.len() > MAX_PER_CHANGE {
            return Err(AppError::Validation(format!(
                "at most {MAX_PER_CHANGE} parameters in one change"
            )));
        }
        let mut changed: BTreeMap<String, Option<String>> = BTreeMap::new();
        let mut needs_restart = Vec::new();
        for (name, value) in &req.parameters {
            let param = parameters::find(name)?;
            let value = match value {
                serde_json::Value::Null => None,
                v => Some(param.check(v)?),
            };
            if param.restart {
                needs_restart.push(param.name.to_owned());
            }
            changed.insert(param.name.to_owned(), value);
        }
        let mut tx = self.db().begin().await?;
        let row = self.lock_instance(&mut tx, id).await?;
        if ![InstanceStatus::Running, InstanceStatus::Paused].contains(&row.status) {
            if let Some(job) = berth_store::fleet::jobs::active_for_instance(&mut *tx, id).await? {
                return Err(AppError::conflict(
                    "instance",
                    format!(
                        "the instance is busy with job {} ({}, {}); try again when it has finished",
                        job.id, job.job_type, job.state
                    ),
                ));
            }
            return Err(AppError::conflict(
                "instance",
                format!(
                    "cannot change the configuration of an instance that is {}; it must be running or paused",
                    row.status
                ),
            ));
        }
        for (name, value) in &changed {
            match value {
                Some(v) => {
                    berth_store::fleet::parameters::set(&mut *tx, id, name, v, Some(p.user_id))
                        .await?
                }
                None => berth_store::fleet::parameters::reset(&mut *tx, id, name).await?,
            }
        }
        let restarts = req.apply == ApplyMode::Restart && row.status == InstanceStatus::Running;
        if restarts {
            berth_store::fleet::instances::set_status(&mut *tx, id, InstanceStatus::Updating, None)
                .await?;
        }
        let job = self
            .commit_change(
                tx,
                &row,
                JobType::Config,
                serde_json::json!({ "restart": restarts }),
                p,
                Event::new("instance.config_updated")
                    .details(serde_json::json!({ "parameters": changed, "restart": restarts })),
            )
            .await?;
        Ok(ConfigChange {
            job_id: job,
            changed,
            pending_restart: if restarts { Vec::new() } else { needs_restart },
        })
    }

    /// Makes the engine run the instance with the parameters its users set.
    pub(crate) async fn apply_config(
        &self,
        engine: &dyn Engine,
        row: &InstanceRow,
    ) -> Result<(), AppError> {
        let spec = crate::jobs::instance_spec(row)?;
        let settings = berth_store::fleet::parameters::list(self.db(), row.id).await?;
        engine.set_parameters(&spec, &settings).await?;
        Ok(())
    }

    /// The parameters the running server still has old values of, waiting for a restart.
    pub(crate) async fn pending_restart(
        &self,
        engine: &dyn Engine,
        row: &InstanceRow,
    ) -> Result<Vec<String>, AppError> {
        let spec = crate::jobs::instance_spec(row)?;
        let names: Vec<&str> = PARAMETERS.iter().map(|p| p.name).collect();
        Ok(engine
            .parameters(&spec, &names)
            .await?
            .into_iter()
            .filter(|l| l.pending_restart)
            .map(|l| l.name)
            .collect())
    }
}
