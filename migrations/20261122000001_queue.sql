-- The durable queue: one row per accepted message and one job per recipient.
--
-- A message gets its 250 only after the message row and all its job rows are committed in one
-- transaction. Workers claim jobs with
--
--   SELECT ... FROM jobs
--    WHERE status IN ('queued', 'deferred', 'leased') AND next_attempt_at <= now()
--    ORDER BY next_attempt_at LIMIT n FOR UPDATE SKIP LOCKED
--
-- and lease them by setting status = 'leased', lease_owner, and next_attempt_at = lease_expires_at.
-- A leased job whose lease runs out is therefore due again by the same predicate: there is no
-- moment at which a job is neither leased nor claimable, and one partial index serves the claim.

CREATE TABLE messages (
    id            uuid        PRIMARY KEY,            -- UUIDv7; its hex form is the queue id
    received_at   timestamptz NOT NULL,
    mail_from     text        NOT NULL,               -- '' is the null reverse-path <>
    helo          text        NOT NULL,
    client_ip     inet        NOT NULL,
    protocol      text        NOT NULL,               -- SMTP, ESMTP (RFC 3848 names)
    body_type     text        NOT NULL CHECK (body_type IN ('7BIT', '8BITMIME', 'BINARYMIME')),
    smtputf8      boolean     NOT NULL,
    dsn_ret       text        CHECK (dsn_ret IN ('FULL', 'HDRS')),
    dsn_envid     text,                               -- decoded xtext (RFC 3461 4.4)
    size          bigint      NOT NULL,               -- octets of body, Received: header included
    body          bytea       NOT NULL                -- Received: header + the message as received
);

CREATE TABLE jobs (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id       uuid        NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    rcpt_index       integer     NOT NULL,            -- order of RCPT commands, from 0
    recipient        text        NOT NULL,            -- forward-path as given, without < >
    domain           text        NOT NULL,            -- lowercased next-hop domain ('' for postmaster)
    dsn_notify       text,                            -- NEVER or a list of SUCCESS,FAILURE,DELAY
    dsn_orcpt        text,                            -- addr-type;decoded original recipient
    status           text        NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'leased', 'deferred', 'delivered', 'bounced', 'expired')),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    lease_owner      text,
    lease_expires_at timestamptz,
    last_reply       text,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (message_id, rcpt_index)
);

-- The claim index: only jobs that can still become due are in it, so it stays small however many
-- delivered jobs the table keeps.
CREATE INDEX jobs_claimable ON jobs (next_attempt_at)
    WHERE status IN ('queued', 'deferred', 'leased');

