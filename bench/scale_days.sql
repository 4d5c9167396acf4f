-- Day partitions for the history part of `make bench-scale`, as a queue that has run for a while
-- has them: one per day from nine days ago to three days ahead. The migration gives a new
-- database a first partition holding every id up to the end of the day it ran, which would hold
-- the whole filled history in one table that no day's retention could drop; it goes first.
DO $$
DECLARE
    partition record;
BEGIN
    FOR partition IN SELECT c.relname FROM pg_class c
                      WHERE c.relispartition AND c.relkind = 'r'
                        AND c.relname ~ '^(messages|jobs|attempts)_[0-9]{8}$'
    LOOP
        EXECUTE format('DROP TABLE %I', partition.relname);
    END LOOP;
    PERFORM queue_prepare_partitions(3, (now() AT TIME ZONE 'UTC')::date - 9);
END
$$;
