-- The control plane: what operators change while Tern runs. Every pod holds a snapshot of these
-- tables and re-reads them when the revision moves (a NATS notice says so, a poll finds out).
--
-- Every row names its owner: 'config' rows mirror a pod's environment settings (written by the
-- pods themselves at start), 'api' rows come from the admin API and the CLI, 'crd' rows from the
-- Kubernetes operator. A writer changes only its own rows.

-- One row; every write to the tables below bumps it in the same transaction.
CREATE TABLE control_revision (
    singleton  boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    revision   bigint      NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO control_revision (revision) VALUES (1);

-- 'local': mailboxes behind Tern; 'relay': Tern is the domain's gateway or backup MX. Both are
-- accepted from anyone. The route is in the worker's transport syntax (smtp:[host]:port, lmtp:…);
-- none means MX (for a relay domain, its MX hosts ranked above Tern).
CREATE TABLE domains (
    name        text        PRIMARY KEY,                -- lower-cased, no trailing dot
    kind        text        NOT NULL CHECK (kind IN ('local', 'relay')),
    route       text,
    owner       text        NOT NULL CHECK (owner IN ('config', 'api', 'crd')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Clients that may relay to any domain.
CREATE TABLE trusted_networks (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    network     cidr        NOT NULL UNIQUE,
    description text        NOT NULL DEFAULT '',
    owner       text        NOT NULL CHECK (owner IN ('config', 'api', 'crd')),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Judged at connect (ip, cidr), at MAIL (helo, sender, sender_domain) and at RCPT (recipient,
-- recipient_domain). 'allow' is the allowlist: a match skips the checks that follow.
CREATE TABLE blocklist (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        text        NOT NULL CHECK (kind IN ('ip', 'cidr', 'helo', 'sender', 'sender_domain',
                                                     'recipient', 'recipient_domain')),
    value       text        NOT NULL,                   -- normalised by the application
    action      text        NOT NULL CHECK (action IN ('reject', 'tempfail', 'allow')),
    reason      text        NOT NULL DEFAULT '',
    expires_at  timestamptz,
    owner       text        NOT NULL CHECK (owner IN ('config', 'api', 'crd')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kind, value)
);

-- Served by SNI next to the certificate files. The key never leaves the database through the
-- API or a log line.
CREATE TABLE certificates (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text        NOT NULL UNIQUE,
    chain_pem   text        NOT NULL,
    key_pem     text        NOT NULL,
    hostnames   text[]      NOT NULL,                   -- from the leaf's subjectAltName
    not_after   timestamptz NOT NULL,
    owner       text        NOT NULL CHECK (owner IN ('config', 'api', 'crd')),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Workers hold delivery to a suspended destination domain until the time given.
CREATE TABLE suspensions (
    domain      text        PRIMARY KEY,
    until       timestamptz NOT NULL,
    reason      text        NOT NULL DEFAULT '',
    owner       text        NOT NULL CHECK (owner IN ('config', 'api', 'crd')),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Admin API bearer tokens, stored as SHA-256 digests only.
CREATE TABLE api_tokens (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text        NOT NULL UNIQUE,
    digest       bytea       NOT NULL UNIQUE,
    scopes       text[]      NOT NULL,
    owner        text        NOT NULL CHECK (owner IN ('config', 'api', 'crd')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz
);

-- Users predate the control plane; those that exist were made with `tern user`.
ALTER TABLE users ADD COLUMN owner text NOT NULL DEFAULT 'api'
    CHECK (owner IN ('config', 'api', 'crd'));

-- Every running ingress, worker and API process, refreshed by its heartbeat.
CREATE TABLE processes (
    id            text        PRIMARY KEY,
    component     text        NOT NULL,
    version       text        NOT NULL,
    started_at    timestamptz NOT NULL,
    heartbeat_at  timestamptz NOT NULL,
    revision      bigint      NOT NULL,
    settings      jsonb       NOT NULL
);
