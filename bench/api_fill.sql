-- api_fill.sql - fills a Tern queue for `make bench-api` by cloning the one message, job and
-- attempt that a real Tern ingress and worker wrote (so every column, present and future, has a
-- value Tern itself would write). psql variables: jobs, deferred, domains.
--
-- Message i (1..jobs) was received (jobs - i) * 7 days / jobs ago: the newest `deferred` ones
-- are deferred (due within the next hour, three attempts made), the rest delivered history with
-- one attempt; bodies of history older than a day are gone, as TERN_RETENTION_BODY (1d) leaves
-- them. One recipient per message, spread over `domains` destination domains.
\set ON_ERROR_STOP on

CREATE TEMP TABLE tm AS SELECT * FROM messages LIMIT 1;
CREATE TEMP TABLE tj AS SELECT * FROM jobs LIMIT 1;
CREATE TEMP TABLE ta AS SELECT * FROM attempts LIMIT 1;
SELECT count(*) = 1 AS template FROM tm \gset
\if :template
\else
  \echo 'api_fill.sql: no template message in the queue'
  \quit
\endif
TRUNCATE attempts, jobs, messages;

CREATE FUNCTION pg_temp.received(i bigint, n bigint) RETURNS timestamptz
  LANGUAGE sql IMMUTABLE AS $$ SELECT '2026-01-08 00:00:00+00'::timestamptz - ((n - i) * interval '7 days') / n $$;
-- UUIDv7-shaped: the received time in milliseconds, then the number: ordered like Tern's ids.
CREATE FUNCTION pg_temp.queue_id(i bigint, n bigint) RETURNS uuid
  LANGUAGE sql IMMUTABLE AS $$
    SELECT (lpad(to_hex((extract(epoch FROM pg_temp.received(i, n)) * 1000)::bigint), 12, '0')
            || '7' || lpad(to_hex(i), 19, '0'))::uuid $$;

-- The fixed epoch above keeps the ids stable; shift every time to now.
SELECT now() - '2026-01-08 00:00:00+00'::timestamptz AS shift \gset

INSERT INTO messages
SELECT (jsonb_populate_record(NULL::messages, to_jsonb(tm) || jsonb_build_object(
          'id', pg_temp.queue_id(i, :jobs),
          'received_at', pg_temp.received(i, :jobs) + :'shift'::interval,
          'mail_from', 'sender' || (i % 5000) || '@origin' || (i % 100) || '.test',
          'header_message_id', '<bench-' || i || '@origin.test>',
          'body', CASE WHEN i <= :jobs - :deferred AND (:jobs - i) * 7.0 / :jobs > 1
                       THEN '\x' ELSE to_jsonb(tm) ->> 'body' END,
          'body_deleted_at', CASE WHEN i <= :jobs - :deferred AND (:jobs - i) * 7.0 / :jobs > 1
                       THEN to_jsonb(pg_temp.received(i, :jobs) + :'shift'::interval + interval '1 day') END
        ))).*
  FROM tm, generate_series(1, :jobs) AS i;

INSERT INTO jobs OVERRIDING SYSTEM VALUE
SELECT (jsonb_populate_record(NULL::jobs, to_jsonb(tj) || jsonb_build_object(
          'id', i,
          'message_id', pg_temp.queue_id(i, :jobs),
          'rcpt_index', 0,
          'recipient', 'user' || i || '@d' || (i % :domains) || '.test',
          'domain', 'd' || (i % :domains) || '.test',
          'status', CASE WHEN i > :jobs - :deferred THEN 'deferred' ELSE 'delivered' END,
          'attempts', CASE WHEN i > :jobs - :deferred THEN 3 ELSE 1 END,
          'next_attempt_at', CASE WHEN i > :jobs - :deferred
                                  THEN now() + (i % 3600) * interval '1 second'
                                  ELSE pg_temp.received(i, :jobs) + :'shift'::interval END,
          'last_reply', CASE WHEN i > :jobs - :deferred
                             THEN '451 4.3.0 d' || (i % :domains) || '.test is busy, try later'
                             ELSE tj.last_reply END,
          'lease_owner', NULL, 'lease_expires_at', NULL, 'dsn_pending', NULL,
          'updated_at', pg_temp.received(i, :jobs) + :'shift'::interval
        ))).*
  FROM tj, generate_series(1, :jobs) AS i;
SELECT setval(pg_get_serial_sequence('jobs', 'id'), :jobs) AS jobs_id \gset

INSERT INTO attempts OVERRIDING SYSTEM VALUE
SELECT (jsonb_populate_record(NULL::attempts, to_jsonb(ta) || jsonb_build_object(
          'id', i,
          'job_id', i,
          'message_id', pg_temp.queue_id(i, :jobs),
          'attempted_at', pg_temp.received(i, :jobs) + :'shift'::interval + interval '1 second',
          'outcome', CASE WHEN i > :jobs - :deferred THEN 'deferred' ELSE 'delivered' END
        ))).*
  FROM ta, generate_series(1, :jobs) AS i;
SELECT setval(pg_get_serial_sequence('attempts', 'id'), :jobs) AS attempts_id \gset

VACUUM ANALYZE messages;
VACUUM ANALYZE jobs;
VACUUM ANALYZE attempts;
