-- Instance lists are ordered by creation across projects (platform admins) and within the
-- caller's projects; both read this index instead of sorting every live row.
CREATE INDEX instances_live_order_idx ON instances (created_at, id) WHERE deleted_at IS NULL;
DROP INDEX instances_project_idx;
CREATE INDEX instances_project_order_idx ON instances (project_id, created_at, id) WHERE deleted_at IS NULL;
