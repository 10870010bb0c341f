-- Everything a caller can authenticate with. Secrets are stored only as SHA-256 digests.

-- A grant is one sign-in: a browser session (identified by a cookie secret) or a token family
-- (access tokens carry its id as `sid`; refresh tokens belong to it). Revoking the grant ends
-- everything issued from it at once.
CREATE TABLE grants (
    id             uuid PRIMARY KEY,
    user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind           text NOT NULL CHECK (kind IN ('session', 'token')),
    scopes         text[] NOT NULL,
    session_digest bytea UNIQUE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    revoked_at     timestamptz,
    revoked_reason text,
    CHECK ((kind = 'session') = (session_digest IS NOT NULL))
);
CREATE INDEX grants_user_idx ON grants (user_id);

CREATE TABLE refresh_tokens (
    id         uuid PRIMARY KEY,
    grant_id   uuid NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    digest     bytea NOT NULL UNIQUE,
    parent_id  uuid REFERENCES refresh_tokens (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    -- Set when the token was exchanged; presenting it again is reuse.
    rotated_at timestamptz
);
CREATE INDEX refresh_tokens_grant_idx ON refresh_tokens (grant_id);

CREATE TABLE api_keys (
    id             uuid PRIMARY KEY,
    user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name           text NOT NULL,
    digest         bytea NOT NULL UNIQUE,
    display_prefix text NOT NULL,
    scopes         text[] NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz,
    last_used_at   timestamptz,
    revoked_at     timestamptz
);
CREATE INDEX api_keys_user_idx ON api_keys (user_id) WHERE revoked_at IS NULL;

-- JWT signing keys; the private half is sealed with the master key (never stored in clear).
CREATE TABLE signing_keys (
    kid                text PRIMARY KEY,
    algorithm          text NOT NULL,
    public_key         bytea NOT NULL,
    sealed_private_key bytea NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    -- When set, the key no longer signs and is published only until this time.
    retired_at         timestamptz
);

-- Failed sign-in counters per account and per client address (fixed windows).
CREATE TABLE login_failures (
    key          text PRIMARY KEY,
    failures     integer NOT NULL,
    window_start timestamptz NOT NULL
);
