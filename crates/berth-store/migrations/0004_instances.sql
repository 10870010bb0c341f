-- Database instances, the jobs that change them, Berth's certificate authority, and
-- idempotency keys for retried creates.

CREATE TABLE certificate_authorities (
    id          uuid PRIMARY KEY,
    cert_pem    text NOT NULL,
    -- PKCS#8 private key, sealed with the master key.
    sealed_key  bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE instances (
    id                  uuid PRIMARY KEY,
    project_id          uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name                text NOT NULL,
    engine              text NOT NULL,
    version             text NOT NULL,
    region              text NOT NULL,
    memory              text NOT NULL,
    storage             text NOT NULL,
    status              text NOT NULL CHECK (status IN ('creating', 'running', 'pausing', 'paused',
                            'resuming', 'restarting', 'repairing', 'updating', 'destroying',
                            'deleted', 'failed')),
    status_message      text,
    -- What the instance should be doing, whatever its status says right now.
    desired_state       text NOT NULL DEFAULT 'running' CHECK (desired_state IN ('running', 'paused', 'deleted')),
    port                integer UNIQUE,
    owner_username      text NOT NULL,
    database_name       text NOT NULL,
    deletion_protection boolean NOT NULL DEFAULT false,
    created_by          uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz
);
CREATE UNIQUE INDEX instances_live_name_key ON instances (project_id, name) WHERE deleted_at IS NULL;
CREATE INDEX instances_project_idx ON instances (project_id, created_at) WHERE deleted_at IS NULL;
CREATE INDEX instances_status_idx ON instances (status) WHERE deleted_at IS NULL;

CREATE TABLE jobs (
    id           uuid PRIMARY KEY,
    type         text NOT NULL,
    state        text NOT NULL DEFAULT 'PENDING'
                 CHECK (state IN ('PENDING', 'STARTED', 'SUCCESS', 'FAILURE', 'ERROR')),
    instance_id  uuid REFERENCES instances (id) ON DELETE CASCADE,
    project_id   uuid,
    site         text NOT NULL,
    payload      jsonb NOT NULL DEFAULT '{}',
    step         text,
    attempts     integer NOT NULL DEFAULT 0,
    error        text,
    created_by   uuid,
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz,
    deadline_at  timestamptz,
    claimed_by   text,
    heartbeat_at timestamptz
);
-- One operation at a time per instance: a second active job cannot even be inserted.
CREATE UNIQUE INDEX jobs_one_active_per_instance ON jobs (instance_id) WHERE state IN ('PENDING', 'STARTED');
CREATE INDEX jobs_pending_idx ON jobs (created_at) WHERE state = 'PENDING';
CREATE INDEX jobs_project_idx ON jobs (project_id, created_at DESC);
CREATE INDEX jobs_instance_idx ON jobs (instance_id, created_at DESC);

CREATE TABLE idempotency_keys (
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key          text NOT NULL,
    request_hash bytea NOT NULL,
    -- The original response (it holds the instance password), sealed with the master key.
    response     bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
