//! Work that is not a request: the supervisor that keeps instances as they should be, the
//! keeper of the spare-instance pool, the backup scheduler, the statistics sampler, and the
//! maintenance loop (signing-key rotation, pruning expired rows).

mod backups;
mod maintenance;
pub(crate) mod spare_pool;
mod spares;
mod stats;
mod supervisor;

use crate::App;

impl App {
    /// Leave to start work that may start a server (a job, a spare), held until it is done;
    /// None once Berth is stopping its instances, which waits for the leave already given.
    pub(crate) async fn begin_engine_work(&self) -> Option<tokio::sync::RwLockReadGuard<'_, ()>> {
        let work = self.inner.engine_work.read().await;
        (!self.is_stopping()).then_some(work)
    }
}
