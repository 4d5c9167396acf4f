-- DKIM signing keys, several selectors per domain so that a key can be rotated: the new one is
-- published in DNS before it signs, the old one stops signing before it is withdrawn. Every key of
-- a domain with `signing` set signs its mail (an RSA and an Ed25519 key side by side is usual).
-- The private key is PKCS#8 DER and never leaves the control plane except to the ingress pods.
CREATE TABLE dkim_keys (
    domain      text        NOT NULL,
    selector    text        NOT NULL,
    algorithm   text        NOT NULL CHECK (algorithm IN ('rsa-sha256', 'ed25519-sha256')),
    private_key bytea       NOT NULL,
    public_key  bytea       NOT NULL,                   -- what the DNS record's p= carries
    signing     boolean     NOT NULL DEFAULT true,
    owner       text        NOT NULL CHECK (owner IN ('config', 'api', 'crd')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (domain, selector)
);
