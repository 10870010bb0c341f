//! `firewall`: makes the instance accept TCP connections from exactly its firewall rules, at
//! once for a running server (a reload: the connections it has stay) and from its next start
//! for a stopped one. The instance's status does not change.

use std::time::Duration;

use super::{Cx, Done, JobKind};
use crate::AppError;

pub(crate) struct Firewall;

impl JobKind for Firewall {
    const DEADLINE: Duration = Duration::from_secs(60);
    const ADVICE: &'static str = "the rules are saved; add or remove a rule to apply them again";
    const FAILS_INSTANCE: bool = false;

    async fn run(cx: &Cx<'_>) -> Result<Done, AppError> {
        cx.step("apply").await?;
        cx.app.apply_firewall(cx.engine, cx.instance).await?;
        Ok(Done::Unchanged)
    }
}
