-- Workflows: one named operation (restart, pause, resume, backup) over many instances, as
-- Ngenea Hub runs a workflow over many paths. Each target is one row; a target that was
-- accepted points at its job, whose state is the target's. The workflow's own state is derived
-- from its targets when it is read, so nothing has to update it when a job ends.
CREATE TABLE workflows (
    id          uuid PRIMARY KEY,
    workflow    text NOT NULL CHECK (workflow IN ('restart', 'pause', 'resume', 'backup', 'import')),
    -- The region the request was limited to (`site`), if any.
    region      text,
    discovery   text CHECK (discovery IN ('recursive')),
    fields      jsonb NOT NULL DEFAULT '{}',
    -- Every project a target is in: the workflow is shown to whoever may read the jobs of all
    -- of them (as a job is shown to whoever may read its project's jobs).
    project_ids uuid[] NOT NULL,
    created_by  uuid,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workflows_created_idx ON workflows (created_at DESC, id DESC);
CREATE INDEX workflows_projects_idx ON workflows USING gin (project_ids);

CREATE TABLE workflow_targets (
    workflow_id uuid NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    position    integer NOT NULL,
    -- The path as the request named it (an expanded project path: the instance's own path).
    path        text NOT NULL,
    instance_id uuid,
    -- `accepted` (a job was started: its state is the target's), `skipped` (the instance
    -- could not take the operation now), `failed` (refused for another reason), `not_found`.
    outcome     text NOT NULL CHECK (outcome IN ('accepted', 'skipped', 'failed', 'not_found')),
    job_id      uuid REFERENCES jobs (id) ON DELETE SET NULL,
    error       text,
    PRIMARY KEY (workflow_id, position)
);

-- A job started by a workflow says so.
ALTER TABLE jobs ADD COLUMN workflow_id uuid REFERENCES workflows (id) ON DELETE SET NULL;
CREATE INDEX jobs_workflow_idx ON jobs (workflow_id) WHERE workflow_id IS NOT NULL;
