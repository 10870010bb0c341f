//! How an instance is doing: its statistics over time and its PostgreSQL log.

use berth_types::{InstanceStats, LogPage, LogQuery, StatsQuery};
use uuid::Uuid;

use crate::{Berth, HttpError};

impl Berth {
    /// Series of the instance's statistics (`metric`, `from`, `to`, `step` as the query says).
    pub async fn instance_stats(
        &self,
        instance: Uuid,
        query: &StatsQuery,
    ) -> Result<InstanceStats, HttpError> {
        self.get_query(&format!("/api/v1/instances/{instance}/stats"), query)
            .await
    }

    /// A page of the instance's log; ask again with its `cursor` for what follows.
    pub async fn instance_logs(
        &self,
        instance: Uuid,
        query: &LogQuery,
    ) -> Result<LogPage, HttpError> {
        self.get_query(&format!("/api/v1/instances/{instance}/logs"), query)
            .await
    }
}
