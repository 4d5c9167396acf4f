-- Greylisting in the manner of postgrey: one row per (client network, sender, recipient)
-- triplet, shared by every ingress pod. A logged table: the state must survive a failover,
-- or every sender would be greylisted again at once.
CREATE TABLE greylist (
    client_net  cidr        NOT NULL,
    sender      text        NOT NULL,
    recipient   text        NOT NULL,
    first_seen  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now(),
    -- The triplet came back after the delay and within the retry window.
    passed      boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (client_net, sender, recipient)
);

-- Clients with enough passed triplets skip greylisting (postgrey's auto-whitelist-clients).
CREATE INDEX greylist_passed_by_client ON greylist (client_net) WHERE passed;
-- The expiry sweep.
CREATE INDEX greylist_last_seen ON greylist (last_seen);
