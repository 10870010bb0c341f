-- Each step a job has started, in order: `[{"name", "attempt", "started_at"}]`. Durations are
-- derived when the job is read (a step ends where the next begins, the last at `finished_at`),
-- so a run that is cut short leaves only what it really did.
ALTER TABLE jobs ADD COLUMN steps jsonb NOT NULL DEFAULT '[]';

-- A spare is made ready without a backup (a burst should not wait behind backups) and backed
-- up once the pool is full and idle; 'backing_up' keeps it from being claimed meanwhile.
ALTER TABLE spares ADD COLUMN backed_up boolean NOT NULL DEFAULT false;
ALTER TABLE spares DROP CONSTRAINT spares_state_check;
ALTER TABLE spares ADD CONSTRAINT spares_state_check
    CHECK (state IN ('warming', 'ready', 'backing_up'));
-- Spares made before this were backed up as they were made.
UPDATE spares SET backed_up = true WHERE state = 'ready';
-- Claims prefer a spare with its backup, then the oldest.
DROP INDEX spares_ready_idx;
CREATE INDEX spares_ready_idx ON spares (region, version, memory, backed_up DESC, created_at)
    WHERE state = 'ready';
