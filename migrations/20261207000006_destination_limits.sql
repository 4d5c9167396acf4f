-- Delivery limits per destination, held across the whole cluster.
--
-- destination_limits: the control plane's limits, by where mail goes: a row applies to a site
-- (the set of MX hosts a domain's mail goes to, or a relay host) when every host of it is the
-- row's name or ends in "." and that name. NULL: the workers' default.
CREATE TABLE destination_limits (
    destination             text PRIMARY KEY,
    max_connections         integer CHECK (max_connections > 0),
    max_messages_per_minute integer CHECK (max_messages_per_minute > 0),
    owner                   text NOT NULL,
    updated_at              timestamptz NOT NULL DEFAULT now()
);

-- The connection slots of each site: a worker holds one per open connection, renews it with its
-- job leases, and gives it back when the connection closes. A dead worker's slot is free once
-- it expires. Unlogged: after a crash of PostgreSQL every slot is free, which is what they are.
CREATE UNLOGGED TABLE destination_slots (
    site       text NOT NULL,
    slot       integer NOT NULL,
    holder     text NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (site, slot)
);
CREATE INDEX destination_slots_holder ON destination_slots (holder);

-- Messages handed to each site per minute, for max_messages_per_minute. `granted` is what the
-- last statement that touched the row granted (the statement's answer, nothing more).
CREATE UNLOGGED TABLE destination_sends (
    site         text NOT NULL,
    window_start timestamptz NOT NULL,
    sent         integer NOT NULL,
    granted      integer NOT NULL,
    PRIMARY KEY (site, window_start)
);
