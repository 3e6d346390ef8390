-- Webhook endpoints as last published by the API (`webhook-endpoints.changes`): what signing needs.
CREATE TABLE webhook_endpoints (
    endpoint_id    text        PRIMARY KEY,
    subscriber_id  text        NOT NULL,
    url            text        NOT NULL,
    secret         text        NOT NULL,
    active         boolean     NOT NULL,
    disabled_reason text,
    updated_at     timestamptz NOT NULL
);

-- The durable delivery queue. One row per (subscriber, notice version, channel, target): a redelivered
-- Kafka message, or several subscriptions matching the same notice, never send twice.
CREATE TABLE deliveries (
    delivery_id     text        PRIMARY KEY,
    subscriber_id   text        NOT NULL,
    match_id        text        NOT NULL,
    notice_id       text        NOT NULL,
    notice_version  text        NOT NULL,
    channel         text        NOT NULL CHECK (channel IN ('email', 'webhook')),
    target          text        NOT NULL,
    language        text        NOT NULL DEFAULT 'fr',
    match           jsonb       NOT NULL,
    status          text        NOT NULL CHECK (status IN ('pending', 'sending', 'retrying', 'sent', 'failed', 'suppressed')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    locked_until    timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    UNIQUE (subscriber_id, notice_id, notice_version, channel, target)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status IN ('pending', 'retrying', 'sending');

-- Every attempt, for support and for the "why did I (not) get it" question.
CREATE TABLE delivery_attempts (
    delivery_id   text        NOT NULL REFERENCES deliveries (delivery_id),
    attempt       integer     NOT NULL,
    at            timestamptz NOT NULL DEFAULT now(),
    outcome       text        NOT NULL,
    detail        text,
    PRIMARY KEY (delivery_id, attempt)
);
