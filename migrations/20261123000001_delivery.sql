-- Delivery: every attempt is kept, and a job remembers what its last attempt said and whether it
-- still owes the sender a delivery status notification.

CREATE TABLE attempts (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id        bigint      NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    message_id    uuid        NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    attempted_at  timestamptz NOT NULL DEFAULT now(),
    worker        text        NOT NULL,               -- lease owner that made the attempt
    outcome       text        NOT NULL CHECK (outcome IN ('delivered', 'deferred', 'bounced', 'expired')),
    status        text        NOT NULL,               -- RFC 3463 code
    reply         text        NOT NULL,               -- remote reply, or what went wrong locally
    mx_host       text,                               -- host name tried (MX, relay host)
    remote_ip     inet,
    tls_version   text,
    tls_cipher    text
);
CREATE INDEX attempts_message ON attempts (message_id);
CREATE INDEX attempts_job ON attempts (job_id);

ALTER TABLE jobs
    ADD COLUMN last_status text,                      -- RFC 3463 code of the last attempt
    ADD COLUMN remote_mta  text,                      -- host that gave the last reply
    -- A DSN this recipient still owes the envelope sender; cleared in the transaction that
    -- queues the DSN, so each is sent once.
    ADD COLUMN dsn_pending text CHECK (dsn_pending IN ('failed', 'delivered', 'relayed'));

CREATE INDEX jobs_dsn_pending ON jobs (message_id) WHERE dsn_pending IS NOT NULL;
