-- NOTIFY is stored in its one text form (NEVER, or SUCCESS, FAILURE and DELAY in that order,
-- as tern_smtp writes it); workers decode it strictly, so nothing else may get in. NOT VALID:
-- rows already queued were written by the same code, and a big queue is not rescanned.
ALTER TABLE jobs ADD CONSTRAINT jobs_dsn_notify_text
    CHECK (dsn_notify ~ '^(NEVER|SUCCESS(,FAILURE)?(,DELAY)?|FAILURE(,DELAY)?|DELAY)$') NOT VALID;
