-- OAuth 2.0 authorization server: API clients, device authorizations, user tokens, refresh
-- grace, individually revoked access tokens, and the audit log.

-- API clients. Confidential clients (service accounts) belong to a user, act as that user
-- narrowed by their scopes (and optionally one project), and always expire. Public clients
-- (Berth's own CLI) have no secret and no owner.
CREATE TABLE clients (
    id            uuid PRIMARY KEY,
    client_id     text NOT NULL UNIQUE,
    name          text NOT NULL,
    owner_id      uuid REFERENCES users (id) ON DELETE CASCADE,
    project_id    uuid REFERENCES projects (id) ON DELETE CASCADE,
    scopes        text[] NOT NULL,
    grant_types   text[] NOT NULL,
    secret_digest bytea,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    revoked_at    timestamptz,
    CHECK ((secret_digest IS NULL) = (owner_id IS NULL)),
    CHECK (secret_digest IS NULL OR expires_at IS NOT NULL)
);
CREATE INDEX clients_owner_idx ON clients (owner_id) WHERE revoked_at IS NULL;

INSERT INTO clients (id, client_id, name, scopes, grant_types)
VALUES ('00000000-0000-7000-8000-000000000001', 'berth-cli', 'Berth CLI',
        ARRAY['users:read', 'users:write', 'projects:create', 'projects:read', 'projects:write',
              'projects:delete', 'members:read', 'members:write', 'instances:read',
              'instances:write', 'jobs:read', 'api_keys:read', 'api_keys:write', 'clients:read',
              'clients:write', 'audit:read'],
        ARRAY['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token',
              'urn:ietf:params:oauth:grant-type:token-exchange']);

-- Long-lived user tokens, exchanged for 24 h session access tokens.
CREATE TABLE user_tokens (
    id             uuid PRIMARY KEY,
    user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name           text NOT NULL,
    digest         bytea NOT NULL UNIQUE,
    display_prefix text NOT NULL,
    created_by     uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    last_used_at   timestamptz,
    revoked_at     timestamptz
);
CREATE INDEX user_tokens_user_idx ON user_tokens (user_id) WHERE revoked_at IS NULL;

-- Grants now also come from OAuth clients: the device flow, token exchange, and user tokens.
ALTER TABLE grants DROP CONSTRAINT grants_kind_check;
ALTER TABLE grants ADD CONSTRAINT grants_kind_check
    CHECK (kind IN ('session', 'token', 'device', 'exchange', 'user_token'));
ALTER TABLE grants ADD COLUMN client_id text;
ALTER TABLE grants ADD COLUMN audience text;
ALTER TABLE grants ADD COLUMN user_token_id uuid REFERENCES user_tokens (id) ON DELETE CASCADE;
CREATE INDEX grants_client_idx ON grants (client_id) WHERE client_id IS NOT NULL;
CREATE INDEX grants_user_token_idx ON grants (user_token_id) WHERE user_token_id IS NOT NULL;

-- Refresh grace: the child issued at rotation, sealed, so a lost response can be retried once.
ALTER TABLE refresh_tokens ADD COLUMN child_sealed bytea;
ALTER TABLE refresh_tokens ADD COLUMN grace_used boolean NOT NULL DEFAULT false;

-- RFC 8628 device authorizations.
CREATE TABLE device_authorizations (
    id                 uuid PRIMARY KEY,
    device_code_digest bytea NOT NULL UNIQUE,
    user_code          text NOT NULL,
    client_id          text NOT NULL,
    scopes             text[] NOT NULL,
    audience           text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    expires_at         timestamptz NOT NULL,
    interval_secs      integer NOT NULL,
    last_polled_at     timestamptz,
    status             text NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'approved', 'denied', 'consumed')),
    user_id            uuid REFERENCES users (id) ON DELETE CASCADE,
    decided_at         timestamptz
);
CREATE UNIQUE INDEX device_authorizations_pending_code_key
    ON device_authorizations (user_code) WHERE status IN ('pending', 'approved');

-- Access tokens revoked one by one (client-credential tokens have no grant to revoke).
CREATE TABLE revoked_access_tokens (
    jti        uuid PRIMARY KEY,
    expires_at timestamptz NOT NULL
);

-- Every authentication event. Never holds a secret.
CREATE TABLE audit_events (
    id             uuid PRIMARY KEY,
    occurred_at    timestamptz NOT NULL DEFAULT now(),
    event_type     text NOT NULL,
    actor_user_id  uuid,
    actor_username text,
    client_id      text,
    project_id     uuid,
    ip             text,
    user_agent     text,
    target_type    text,
    target_id      text,
    details        jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_time_idx ON audit_events (occurred_at DESC, id DESC);
CREATE INDEX audit_events_type_idx ON audit_events (event_type, occurred_at DESC);
CREATE INDEX audit_events_actor_idx ON audit_events (actor_user_id, occurred_at DESC);
CREATE INDEX audit_events_project_idx ON audit_events (project_id, occurred_at DESC) WHERE project_id IS NOT NULL;
