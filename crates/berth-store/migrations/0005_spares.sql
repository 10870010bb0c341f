-- Pre-started spare clusters: a create claims one (re-credentialed and re-certified) instead of
-- copying and starting a cluster while the user waits.
CREATE TABLE spares (
    id         uuid PRIMARY KEY,
    version    text NOT NULL,
    memory     text NOT NULL,
    port       integer NOT NULL UNIQUE,
    region     text NOT NULL,
    -- 'warming' while being provisioned, 'ready' once it accepts connections.
    state      text NOT NULL DEFAULT 'warming' CHECK (state IN ('warming', 'ready')),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX spares_ready_idx ON spares (region, version, memory, created_at) WHERE state = 'ready';
