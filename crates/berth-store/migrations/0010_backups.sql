-- Backups and point-in-time recovery. The backup tool's repository is the truth about what
-- exists; these rows mirror it (refreshed after every backup and expiry) so lists are fast,
-- paginated and scoped to projects, and so a backup in progress or one that failed is visible.

CREATE TABLE backups (
    id              uuid PRIMARY KEY,
    instance_id     uuid NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    project_id      uuid NOT NULL,
    -- The backup tool's name for it (pgBackRest label), once it has one.
    label           text,
    type            text NOT NULL CHECK (type IN ('full', 'diff', 'incr')),
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'running', 'completed', 'failed')),
    -- Who asked for it: a user, the schedule, or Berth for a new instance's first backup.
    trigger         text NOT NULL CHECK (trigger IN ('manual', 'scheduled', 'initial')),
    -- The label of the backup this one is based on (diff and incr only).
    prior_label     text,
    started_at      timestamptz,
    finished_at     timestamptz,
    size            bigint,
    repository_size bigint,
    wal_start       text,
    wal_stop        text,
    lsn_start       text,
    lsn_stop        text,
    job_id          uuid,
    error           text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX backups_label_key ON backups (instance_id, label);
CREATE INDEX backups_instance_idx ON backups (instance_id, created_at DESC);
CREATE INDEX backups_project_idx ON backups (project_id, created_at DESC);

-- When and how long an instance is backed up. No row: the documented default.
CREATE TABLE backup_policies (
    instance_id              uuid PRIMARY KEY REFERENCES instances (id) ON DELETE CASCADE,
    enabled                  boolean NOT NULL,
    -- Minutes after midnight UTC at which the full backup starts.
    full_backup_minute       integer NOT NULL CHECK (full_backup_minute BETWEEN 0 AND 1439),
    -- ISO weekdays (1 = Monday … 7 = Sunday) with a full backup.
    full_backup_days         integer[] NOT NULL,
    differential_every_hours integer CHECK (differential_every_hours BETWEEN 1 AND 24),
    retention_days           integer CHECK (retention_days BETWEEN 1 AND 3650),
    retention_full_backups   integer CHECK (retention_full_backups BETWEEN 1 AND 1000),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    CHECK ((retention_days IS NULL) <> (retention_full_backups IS NULL))
);

-- Where an instance came from when it was restored or cloned, and what it recovered to.
ALTER TABLE instances
    ADD COLUMN source_instance_id   uuid,
    ADD COLUMN source_backup_id     uuid,
    ADD COLUMN source_point_in_time timestamptz,
    ADD COLUMN recovered_to_time    timestamptz,
    ADD COLUMN recovered_to_lsn     text,
    -- Every transaction committed before this moment is in the archive (set when the server
    -- is stopped for a pause or a delete, after its last WAL was archived).
    ADD COLUMN archived_until       timestamptz,
    -- Set once the archive and backups of a deleted instance are gone (retention ran out).
    ADD COLUMN archive_removed_at   timestamptz;

-- A backup is a job that does not change its instance: it runs beside the instance's other
-- jobs (a pause or a resize never waits hours for a backup; one that stops the server fails
-- the backup instead), but only one backup at a time per instance.
DROP INDEX jobs_one_active_per_instance;
CREATE UNIQUE INDEX jobs_one_active_per_instance ON jobs (instance_id)
    WHERE state IN ('PENDING', 'STARTED') AND type <> 'backup';
CREATE UNIQUE INDEX jobs_one_backup_per_instance ON jobs (instance_id)
    WHERE state IN ('PENDING', 'STARTED') AND type = 'backup';

-- Progress of long jobs, where the tool reports it.
ALTER TABLE jobs
    ADD COLUMN progress_percent real,
    ADD COLUMN bytes_done       bigint,
    ADD COLUMN bytes_total      bigint;
