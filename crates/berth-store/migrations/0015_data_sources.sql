-- External PostgreSQL databases a project imports from (BigID's "data-source connections").
-- The password is sealed with the server's key (bound to the row's id): the import job needs
-- it again, so it cannot be a digest; it is never returned.
CREATE TABLE data_sources (
    id              uuid PRIMARY KEY,
    project_id      uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name            text NOT NULL,
    host            text NOT NULL,
    port            integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
    database_name   text NOT NULL,
    username        text NOT NULL,
    password_sealed bytea NOT NULL,
    sslmode         text NOT NULL
        CHECK (sslmode IN ('disable', 'prefer', 'require', 'verify-ca', 'verify-full')),
    ca_certificate  text,
    created_by      uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- What the last `POST …/test` found.
    last_tested_at  timestamptz,
    last_test_ok    boolean,
    last_test_error text
);
CREATE UNIQUE INDEX data_sources_name_key ON data_sources (project_id, name);

-- An instance made from a logical copy of a data source (not a foreign key: the data source
-- may be deleted later, and the instance still says where it came from).
ALTER TABLE instances ADD COLUMN source_data_source_id uuid;
