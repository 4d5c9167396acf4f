-- The policy document: the policy checks' settings for the whole cluster (docs/policy.md), one
-- row at most. Each field set replaces the ingress pods' environment setting of the same name.
CREATE TABLE policy (
    singleton   boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    document    jsonb       NOT NULL,
    owner       text        NOT NULL CHECK (owner IN ('config', 'api', 'crd')),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
