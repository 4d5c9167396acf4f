-- scale_fill.sql - queue rows for `make bench-scale`, written in one statement per table so
-- that ten million rows take minutes, not hours. psql variables:
--   history  finished messages (one delivered job and one attempt each), received over the last
--            8 days: the oldest eighth is past the default TERN_RETENTION_HISTORY (7d), bodies
--            older than a day are already gone as TERN_RETENTION_BODY (1d) leaves them.
--   queued   messages due now, `rcpts` queued jobs each, 1 KB bodies.
--   domains  destination domains the recipients spread over.
--   due_in   seconds until the queued jobs are due (0 unless set), so that workers can be
--            started first and the clock started by making them due.
-- The columns are named: a NOT NULL column added to the schema without a default makes this
-- fail instead of going stale. Ids are UUIDv7-shaped (received time in ms, then the number),
-- ordered like Tern's own; numbers continue after the rows already there.
\set ON_ERROR_STOP on
\if :{?due_in}
\else
  \set due_in 0
\endif

SELECT COALESCE(max(id), 0) AS jobs_base FROM jobs \gset
SELECT count(*) AS messages_base FROM messages \gset

CREATE FUNCTION pg_temp.queue_id(at timestamptz, i bigint) RETURNS uuid
  LANGUAGE sql IMMUTABLE AS $$
    SELECT (lpad(to_hex((extract(epoch FROM at) * 1000)::bigint), 12, '0')
            || '7' || lpad(to_hex(i), 19, '0'))::uuid $$;

-- History: message i was received (history - i) * 8 days / history ago.
CREATE TEMP TABLE h AS
SELECT i, :messages_base + i AS n,
       now() - ((:history - i) * interval '8 days') / greatest(:history, 1) AS at
  FROM generate_series(1, :history) AS i;

INSERT INTO messages (id, received_at, mail_from, helo, client_ip, protocol, body_type, smtputf8,
                      size, body, header_message_id, body_deleted_at)
SELECT pg_temp.queue_id(at, n), at, 'sender' || (i % 5000) || '@origin.test', 'client.origin.test',
       '127.0.0.1', 'ESMTP', '7BIT', false, 1024,
       CASE WHEN at < now() - interval '1 day' THEN ''::bytea
            ELSE convert_to('Subject: history ' || n || E'\r\n\r\n' || repeat(E'x\r\n', 490), 'UTF8') END,
       '<history-' || n || '@origin.test>',
       CASE WHEN at < now() - interval '1 day' THEN at + interval '1 day' END
  FROM h;

INSERT INTO jobs (id, message_id, rcpt_index, recipient, domain, status, attempts, next_attempt_at,
                  last_reply, last_status, remote_mta, updated_at) OVERRIDING SYSTEM VALUE
SELECT :jobs_base + i, pg_temp.queue_id(at, n), 0,
       'user' || n || '@d' || (i % :domains) || '.test', 'd' || (i % :domains) || '.test',
       'delivered', 1, at + interval '1 second', '250 2.0.0 Ok: queued', '2.0.0', 'sink.test',
       at + interval '1 second'
  FROM h;

INSERT INTO attempts (job_id, message_id, attempted_at, worker, outcome, status, reply, mx_host,
                      remote_ip)
SELECT :jobs_base + i, pg_temp.queue_id(at, n), at + interval '1 second', 'bench', 'delivered',
       '2.0.0', '250 2.0.0 Ok: queued', 'sink.test', '127.0.0.1'
  FROM h;

-- Queued: due now, numbered after the history.
CREATE TEMP TABLE q AS
SELECT i, :messages_base + :history + i AS n, now() AS at FROM generate_series(1, :queued) AS i;

INSERT INTO messages (id, received_at, mail_from, helo, client_ip, protocol, body_type, smtputf8,
                      size, body, header_message_id)
SELECT pg_temp.queue_id(at, n), at, 'sender' || (i % 5000) || '@origin.test', 'client.origin.test',
       '127.0.0.1', 'ESMTP', '7BIT', false, 1024,
       convert_to('Subject: queued ' || n || E'\r\nMessage-ID: <queued-' || n || E'@origin.test>\r\n\r\n'
                  || repeat(E'x\r\n', 470), 'UTF8'),
       '<queued-' || n || '@origin.test>'
  FROM q;

INSERT INTO jobs (id, message_id, rcpt_index, recipient, domain, status, attempts, next_attempt_at)
  OVERRIDING SYSTEM VALUE
SELECT :jobs_base + :history + (i - 1) * :rcpts + r + 1, pg_temp.queue_id(at, n), r,
       'user' || n || '.' || r || '@d' || (i % :domains) || '.test', 'd' || (i % :domains) || '.test',
       'queued', 0, at + :due_in * interval '1 second'
  FROM q, generate_series(0, :rcpts - 1) AS r;

SELECT setval(pg_get_serial_sequence('jobs', 'id'), greatest(max(id), 1)) AS jobs_id FROM jobs \gset

ANALYZE messages;
ANALYZE jobs;
ANALYZE attempts;
