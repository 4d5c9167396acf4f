-- Which resource a `crd` blocklist entry came from (`namespace/name` of its MailBlocklist), so the
-- operator can replace one MailBlocklist's entries without touching another's. NULL for the
-- API's and the environment's entries.
ALTER TABLE blocklist ADD COLUMN source text;
CREATE INDEX blocklist_source ON blocklist (source) WHERE source IS NOT NULL;
