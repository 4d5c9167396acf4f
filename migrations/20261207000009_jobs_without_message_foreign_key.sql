-- A message's jobs are written with it, in the one statement that commits the message (the
-- ingress, and a worker queueing a notification), and deleted with it by the only statements that
-- delete messages (the queue's delete action, the retention sweep), which now name the jobs
-- themselves. The foreign key only re-checked that: a trigger query per recipient at commit,
-- each locking the message row, and a cascading delete per message in the sweep. Without it the
-- whole system spent about a tenth less CPU per message in alternating runs (bench/README.md).
ALTER TABLE jobs DROP CONSTRAINT jobs_message_id_fkey;
