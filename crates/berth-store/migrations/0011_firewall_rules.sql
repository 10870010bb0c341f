-- Who may connect to an instance over TCP: one pg_hba.conf line per rule. An instance with no
-- rule accepts nobody over TCP.
CREATE TABLE firewall_rules (
    id          uuid PRIMARY KEY,
    instance_id uuid NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    -- Normalised: the network address and prefix length, e.g. 10.0.0.0/8 or 2001:db8::/32.
    cidr        text NOT NULL,
    description text NOT NULL DEFAULT '',
    created_by  uuid,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX firewall_rules_cidr_key ON firewall_rules (instance_id, cidr);

-- Instances made before rules existed accepted every address; they keep doing so.
INSERT INTO firewall_rules (id, instance_id, cidr, description)
SELECT gen_random_uuid(), i.id, c, 'every address (the rule of instances made before firewall rules)'
FROM instances i, unnest(ARRAY['0.0.0.0/0', '::/0']) AS c
WHERE i.deleted_at IS NULL;
