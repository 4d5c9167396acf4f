-- Lease renewal and release find a worker's leased jobs by owner. Without this index each renewal
-- scans the whole jobs table, delivered rows included, every third of a lease: cost that grows
-- with the table's history, and row locks taken in scan order that convoy with the finishing
-- statements of the same worker. Only leased rows are indexed, so it stays as small as the work
-- in flight.
CREATE INDEX jobs_leased_by ON jobs (lease_owner) WHERE status = 'leased';
