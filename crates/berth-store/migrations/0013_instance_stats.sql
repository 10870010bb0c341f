-- Statistics Berth samples of every running instance: one row per sample (every
-- `[stats] interval_seconds`), which the maintenance pass turns into one row per 5 minutes
-- (their averages, `downsampled`) once they are a day old, and removes after the retention.
-- Rates are per second; null where a sample could not say (the first after a restart, a reset
-- of the counters). The rows go with the instance (deleted instances' rows are removed by the
-- same pass; a removed instance row takes them along).
CREATE TABLE instance_stats (
    instance_id                     uuid NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    at                              timestamptz NOT NULL,
    downsampled                     boolean NOT NULL DEFAULT false,
    connections_total               real,
    connections_active              real,
    connections_idle_in_transaction real,
    connections_max                 real,
    commits_per_second              real,
    rollbacks_per_second            real,
    rows_read_per_second            real,
    rows_written_per_second         real,
    cache_hit_ratio                 real,
    database_size_bytes             double precision,
    wal_bytes_per_second            real,
    replication_lag_seconds         real,
    PRIMARY KEY (instance_id, at, downsampled)
);
-- The maintenance pass finds old rows by time across instances.
CREATE INDEX instance_stats_at_idx ON instance_stats (at);
