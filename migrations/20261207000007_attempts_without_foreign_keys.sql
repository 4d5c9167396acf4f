-- An attempt row is written for every recipient the workers try, in the statement that finishes
-- its job (the job row is locked there and the message row exists), and deleted with its job or
-- message by the only statements that delete those (the queue's delete action, the retention
-- sweep). Its two foreign keys only re-checked that on every insert: two trigger queries per
-- attempt, each locking a parent row, about a fifth of the finishing statement's time under load
-- (bench/README.md). The indexes on job_id and message_id stay for reading and deleting.
ALTER TABLE attempts
    DROP CONSTRAINT attempts_job_id_fkey,
    DROP CONSTRAINT attempts_message_id_fkey;
