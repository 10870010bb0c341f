-- What users set of an instance's configuration: one row per parameter that differs from its
-- default (the memory class's value, or PostgreSQL's). Values are as Berth validated and wrote
-- them.
CREATE TABLE instance_parameters (
    instance_id uuid NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    name        text NOT NULL,
    value       text NOT NULL,
    updated_by  uuid,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (instance_id, name)
);

-- Database users made through the API (the owner role is the instance's own). The password is
-- kept only as a SCRAM-SHA-256 verifier, which the job that makes the role hands PostgreSQL.
CREATE TABLE db_users (
    instance_id       uuid NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    name              text NOT NULL,
    profile           text NOT NULL CHECK (profile IN ('read_only', 'read_write', 'admin')),
    password_verifier text NOT NULL,
    -- creating → active; deleting until the job has dropped the role.
    state             text NOT NULL DEFAULT 'creating' CHECK (state IN ('creating', 'active', 'deleting')),
    created_by        uuid,
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (instance_id, name)
);

-- Databases made through the API (the owner's database is the instance's own).
CREATE TABLE db_databases (
    instance_id uuid NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    name        text NOT NULL,
    owner       text NOT NULL,
    state       text NOT NULL DEFAULT 'creating' CHECK (state IN ('creating', 'active', 'deleting')),
    created_by  uuid,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (instance_id, name)
);
