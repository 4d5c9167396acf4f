-- Day partitions for the history part of `make bench-scale`, as a queue that has run for a while
-- has them: the empty tables' partitions are replaced by one per day for the last nine days and
-- today's and the coming days' (queue_prepare_partitions). The migration gives a new database a
-- first partition holding every id up to the end of the day it ran, which would hold the whole
-- filled history in one table that no day's retention could drop.
DO $$
DECLARE
    partition record;
    day date;
    parent text;
BEGIN
    FOR partition IN SELECT c.relname FROM pg_class c
                      WHERE c.relispartition AND c.relkind = 'r'
                        AND c.relname ~ '^(messages|jobs|attempts)_[0-9]{8}$'
    LOOP
        EXECUTE format('DROP TABLE %I', partition.relname);
    END LOOP;
    FOR day IN SELECT generate_series((now() AT TIME ZONE 'UTC')::date - 9,
                                      (now() AT TIME ZONE 'UTC')::date - 1,
                                      interval '1 day')::date
    LOOP
        FOREACH parent IN ARRAY ARRAY['messages', 'jobs', 'attempts'] LOOP
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                           parent || '_' || to_char(day, 'YYYYMMDD'), parent,
                           queue_day_start(day), queue_day_start(day + 1));
        END LOOP;
    END LOOP;
    PERFORM queue_prepare_partitions(3);
END
$$;
