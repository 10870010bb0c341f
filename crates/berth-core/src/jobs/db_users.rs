//! `db_users`: makes the running instance's database users what the API says (made, given
//! their profile and password, or removed with what they owned handed to the owner), and the
//! owner's password new when a reset asked for it. The instance's status does not change.

use std::time::Duration;

use super::{Cx, Done, JobKind};
use crate::AppError;

pub(crate) struct DbUsers;

impl JobKind for DbUsers {
    const DEADLINE: Duration = Duration::from_secs(120);
    const ADVICE: &'static str =
        "the change is saved; the next change of the instance's users applies it again";
    const FAILS_INSTANCE: bool = false;

    async fn run(cx: &Cx<'_>) -> Result<Done, AppError> {
        cx.step("apply").await?;
        let owner_verifier = cx.job.payload["owner_password_verifier"].as_str();
        cx.app
            .apply_db_users(cx.engine, cx.instance, owner_verifier)
            .await?;
        Ok(Done::Unchanged)
    }
}
