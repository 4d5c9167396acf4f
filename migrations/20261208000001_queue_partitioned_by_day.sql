-- `messages`, `jobs` and `attempts` are partitioned by the day a message arrived, so that
-- retention forgets a day of history by dropping its partitions instead of deleting its rows
-- (about 0.08 ms of PostgreSQL CPU per message before, a tenth of PostgreSQL's share of a
-- message, plus the vacuum of what was deleted: docs/scaling.md).
--
-- The partition key is the message's id: a UUIDv7 starts with the milliseconds of its creation,
-- so a day is a range of ids and no column is added. `jobs` and `attempts` are partitioned by
-- their `message_id`, so a message, its jobs and its attempts share a day. A key of a partitioned
-- table includes the partition key: the primary key of `jobs` and of `attempts` becomes
-- `(id, message_id)`; ids still come from one sequence each, so `id` alone stays unique.
--
-- A day's partitions are named `<table>_YYYYMMDD` (UTC). `queue_prepare_partitions(days)` makes
-- those of today and the next `days` days; every worker calls it, so does the migration. The
-- rows already queued become the partitions of the day this migration runs, holding every id
-- up to the end of that day, and are forgotten with it.

-- The first possible id of `day`: its first millisecond (UTC), every other bit zero.
CREATE FUNCTION queue_day_start(day date) RETURNS uuid
    LANGUAGE sql IMMUTABLE STRICT
    RETURN (lpad(to_hex((extract(epoch FROM day::timestamp) * 1000)::bigint), 12, '0')
            || repeat('0', 20))::uuid;

-- Makes the partitions of `messages`, `jobs` and `attempts` for today and the `days` days after
-- it that do not exist yet, and for the days from `since` when given (a test or a benchmark
-- making past days); returns how many tables it made.
CREATE FUNCTION queue_prepare_partitions(days integer, since date DEFAULT NULL) RETURNS integer
    LANGUAGE plpgsql AS $$
DECLARE
    today date := (now() AT TIME ZONE 'UTC')::date;
    day date;
    parent text;
    made integer := 0;
BEGIN
    -- Every worker calls this once a minute: two making the same table at once would fail.
    PERFORM pg_advisory_xact_lock(hashtext('queue_prepare_partitions'));
    FOR day IN SELECT generate_series(COALESCE(since, today), today + days, interval '1 day')::date
    LOOP
        FOREACH parent IN ARRAY ARRAY['messages', 'jobs', 'attempts'] LOOP
            IF to_regclass(format('%I', parent || '_' || to_char(day, 'YYYYMMDD'))) IS NULL THEN
                EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                               parent || '_' || to_char(day, 'YYYYMMDD'), parent,
                               queue_day_start(day), queue_day_start(day + 1));
                made := made + 1;
            END IF;
        END LOOP;
    END LOOP;
    RETURN made;
END
$$;

-- The migration itself, in three steps: the tables become partitions of the day it runs, new
-- partitioned tables take their names, and the old tables are attached with every id up to the
-- end of that day. The attaching step finds the indexes below on the old tables and adopts them.
DO $$
DECLARE
    suffix text := to_char((now() AT TIME ZONE 'UTC')::date, 'YYYYMMDD');
    parent text;
    index record;
    next_id bigint;
BEGIN
    FOREACH parent IN ARRAY ARRAY['messages', 'jobs', 'attempts'] LOOP
        -- Indexes take the table's new name so that the parent's get the old names.
        EXECUTE format('ALTER TABLE %I RENAME TO %I', parent, parent || '_' || suffix);
        FOR index IN SELECT indexname FROM pg_indexes
                      WHERE schemaname = current_schema() AND tablename = parent || '_' || suffix
        LOOP
            EXECUTE format('ALTER INDEX %I RENAME TO %I', index.indexname,
                           parent || '_' || suffix || substr(index.indexname, length(parent) + 1));
        END LOOP;
    END LOOP;

    -- A partitioned table cannot have an identity column (PostgreSQL 15): ids of jobs and
    -- attempts come from a sequence that carries on where the identity stopped.
    FOREACH parent IN ARRAY ARRAY['jobs', 'attempts'] LOOP
        EXECUTE format('ALTER TABLE %I ALTER COLUMN id DROP IDENTITY', parent || '_' || suffix);
        EXECUTE format('SELECT COALESCE(max(id), 0) + 1 FROM %I', parent || '_' || suffix)
           INTO next_id;
        EXECUTE format('CREATE SEQUENCE %I START WITH %s', parent || '_id_seq', next_id);
        EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I, ADD PRIMARY KEY (id, message_id)',
                       parent || '_' || suffix, parent || '_' || suffix || '_pkey');
    END LOOP;
    -- A partitioned table takes no NOT VALID check from a partition: the queued rows are
    -- checked now (they were written by the code the check describes).
    EXECUTE format('ALTER TABLE %I VALIDATE CONSTRAINT jobs_dsn_notify_text', 'jobs_' || suffix);

    FOREACH parent IN ARRAY ARRAY['messages', 'jobs', 'attempts'] LOOP
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
                        PARTITION BY RANGE (%I)',
                       parent, parent || '_' || suffix,
                       CASE parent WHEN 'messages' THEN 'id' ELSE 'message_id' END);
    END LOOP;
END
$$;

ALTER TABLE messages ADD PRIMARY KEY (id);
CREATE INDEX messages_received_at ON messages (received_at);
CREATE INDEX messages_body_kept ON messages (received_at) WHERE body_deleted_at IS NULL;
CREATE INDEX messages_header_message_id ON messages (header_message_id)
    WHERE header_message_id IS NOT NULL;
CREATE INDEX messages_reports_on ON messages (reports_on) WHERE reports_on IS NOT NULL;

ALTER TABLE jobs ALTER COLUMN id SET DEFAULT nextval('jobs_id_seq');
ALTER SEQUENCE jobs_id_seq OWNED BY jobs.id;
ALTER TABLE jobs ADD PRIMARY KEY (id, message_id);
ALTER TABLE jobs ADD UNIQUE (message_id, rcpt_index);
CREATE INDEX jobs_claimable ON jobs (next_attempt_at)
    WHERE status IN ('queued', 'deferred', 'leased');
CREATE INDEX jobs_domain_unfinished ON jobs (domain)
    WHERE status IN ('queued', 'deferred', 'leased', 'held');
CREATE INDEX jobs_dsn_pending ON jobs (message_id) WHERE dsn_pending IS NOT NULL;
CREATE INDEX jobs_leased_by ON jobs (lease_owner) WHERE status = 'leased';

ALTER TABLE attempts ALTER COLUMN id SET DEFAULT nextval('attempts_id_seq');
ALTER SEQUENCE attempts_id_seq OWNED BY attempts.id;
ALTER TABLE attempts ADD PRIMARY KEY (id, message_id);
CREATE INDEX attempts_message ON attempts (message_id);
CREATE INDEX attempts_job ON attempts (job_id);

DO $$
DECLARE
    day date := (now() AT TIME ZONE 'UTC')::date;
    parent text;
BEGIN
    FOREACH parent IN ARRAY ARRAY['messages', 'jobs', 'attempts'] LOOP
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (MINVALUE) TO (%L)',
                       parent, parent || '_' || to_char(day, 'YYYYMMDD'),
                       queue_day_start(day + 1));
    END LOOP;
END
$$;

SELECT queue_prepare_partitions(3);
