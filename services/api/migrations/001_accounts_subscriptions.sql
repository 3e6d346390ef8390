CREATE TABLE accounts (
    account_id  text        PRIMARY KEY,
    name        text        NOT NULL,
    email       text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Keys are shown once; only a SHA-256 of their secret part is kept (they are 256-bit random, so a fast hash
-- is enough: there is nothing to brute-force).
CREATE TABLE api_keys (
    key_id      text        PRIMARY KEY,
    account_id  text        NOT NULL REFERENCES accounts (account_id),
    key_hash    text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX api_keys_account ON api_keys (account_id);

-- The secret is kept in clear: signing needs it. It is shown to its owner once, at creation.
CREATE TABLE webhook_endpoints (
    endpoint_id text        PRIMARY KEY,
    account_id  text        NOT NULL REFERENCES accounts (account_id),
    url         text        NOT NULL,
    secret      text        NOT NULL,
    active      boolean     NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_account ON webhook_endpoints (account_id);

CREATE TABLE subscriptions (
    subscription_id text        PRIMARY KEY,
    account_id      text        NOT NULL REFERENCES accounts (account_id),
    name            text        NOT NULL,
    filters         jsonb       NOT NULL,
    delivery        jsonb       NOT NULL,
    active          boolean     NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscriptions_account ON subscriptions (account_id);

-- Transactional outbox: written in the same transaction as the change it announces, relayed to Kafka
-- afterwards; a NULL value is a tombstone.
CREATE TABLE outbox (
    id            bigserial   PRIMARY KEY,
    topic         text        NOT NULL,
    key           text        NOT NULL,
    value         bytea,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

-- Read model of classified notices for GET /v1/notices/{id}.
CREATE TABLE notices (
    notice_id     text        PRIMARY KEY,
    version       text        NOT NULL,
    kind          text        NOT NULL,
    title         text        NOT NULL,
    buyer_name    text        NOT NULL,
    departments   text[]      NOT NULL DEFAULT '{}',
    regions       text[]      NOT NULL DEFAULT '{}',
    sectors       text[]      NOT NULL DEFAULT '{}',
    published_at  timestamptz,
    deadline      timestamptz,
    document      jsonb       NOT NULL,
    classified_at timestamptz NOT NULL
);
