-- Sign-in attempts whose password is being checked right now. A failure is counted in
-- login_failures only once it is verified; until then the attempt holds a reservation here, so
-- concurrent attempts never check more guesses than the limit allows, and a correct password
-- is never counted as a failure. Reservations expire, so a Berth that died mid-check does not
-- hold them.
CREATE TABLE login_attempts (
    key        text NOT NULL,
    id         uuid NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (key, id)
);
CREATE INDEX login_attempts_id_idx ON login_attempts (id);
