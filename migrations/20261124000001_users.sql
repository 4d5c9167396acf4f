-- SMTP AUTH: the users who may submit mail, the envelope senders each may use, and the failed
-- attempts that lock a login or a client address out. The failure counters live here rather
-- than in each ingress process so that a lockout holds on every pod.

CREATE TABLE users (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    login          text        NOT NULL UNIQUE,        -- lower-cased by the application
    password_hash  text        NOT NULL,               -- argon2id PHC string
    disabled       boolean     NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- 'alice@example.com' allows that one address, '@example.com' every address in the domain.
-- A login that is itself an address may always send as that address, without a row here.
CREATE TABLE user_senders (
    user_id  bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sender   text   NOT NULL,                          -- lower-cased by the application
    PRIMARY KEY (user_id, sender)
);

-- One fixed window per login and per client address (an IPv4 address or an IPv6 /64). An
-- attempt is counted before the password is checked, so concurrent attempts on many pods cannot
-- overshoot the limit; a success removes the login's row and gives the address its attempt back.
CREATE TABLE auth_failures (
    scope         text        NOT NULL CHECK (scope IN ('login', 'ip')),
    key           text        NOT NULL,
    window_start  timestamptz NOT NULL,
    failures      integer     NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX auth_failures_window ON auth_failures (window_start);
