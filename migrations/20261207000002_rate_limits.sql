-- Cluster-wide rate limits: one row per limited key (a client network, a user, a sender or
-- recipient domain) holding its GCRA "theoretical arrival time". Unlogged: after a crash the
-- limits start afresh, which costs nothing but a burst; in exchange no WAL is written for a
-- counter that changes with every message.
CREATE UNLOGGED TABLE rate_limits (
    key  text        PRIMARY KEY,
    tat  timestamptz NOT NULL
);
CREATE INDEX rate_limits_tat ON rate_limits (tat);
