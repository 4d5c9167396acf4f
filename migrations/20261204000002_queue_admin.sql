-- Looking into and acting on the queue: held jobs, the Message-ID to search by, and attempts
-- made by an operator's action (a bounce) rather than a worker.

ALTER TABLE jobs DROP CONSTRAINT jobs_status_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_status_check
    CHECK (status IN ('queued', 'leased', 'deferred', 'delivered', 'bounced', 'expired', 'held'));

-- The Message-ID header field, as the ingress read it at commit.
ALTER TABLE messages ADD COLUMN header_message_id text;
CREATE INDEX messages_header_message_id ON messages (header_message_id)
    WHERE header_message_id IS NOT NULL;
CREATE INDEX messages_received_at ON messages (received_at);

-- A delivery status notification names the message it reports on.
ALTER TABLE messages ADD COLUMN reports_on uuid;
CREATE INDEX messages_reports_on ON messages (reports_on) WHERE reports_on IS NOT NULL;

-- Filters of the queue listing and bulk actions by destination.
CREATE INDEX jobs_domain_unfinished ON jobs (domain)
    WHERE status IN ('queued', 'deferred', 'leased', 'held');

-- Retention: a finished message's body is deleted after TERN_RETENTION_BODY, its history
-- (message row, jobs, attempts) after TERN_RETENTION_HISTORY.
ALTER TABLE messages ADD COLUMN body_deleted_at timestamptz;
