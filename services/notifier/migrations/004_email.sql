-- Daily and weekly digests. A delivery for a digest is recorded 'held' in the open digest of its subscriber, address
-- and period (`email_digests`, status 'held'), and waits there until the period's send time (`digest_at`). At that
-- time the digest row is claimed (FOR UPDATE SKIP LOCKED) and its deliveries go out in one email with the digest's
-- Message-ID. A notice recorded after its period's digest was claimed opens a new digest for the same period.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_status_check
    CHECK (status IN ('pending', 'sending', 'retrying', 'sent', 'failed', 'suppressed', 'held'));
ALTER TABLE deliveries
    ADD COLUMN digest_at timestamptz,
    ADD COLUMN digest_id text;
CREATE INDEX deliveries_digest ON deliveries (digest_id) WHERE digest_id IS NOT NULL;

CREATE TABLE email_digests (
    digest_id       text        PRIMARY KEY,  -- the Message-ID's key: the same on every attempt
    subscriber_id   text        NOT NULL,
    target          text        NOT NULL,     -- the address, lower case
    digest_at       timestamptz NOT NULL,     -- the period's send time
    language        text        NOT NULL,
    status          text        NOT NULL CHECK (status IN ('held', 'sending', 'retrying', 'sent', 'failed', 'suppressed')),
    notices         integer     NOT NULL DEFAULT 0,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    locked_until    timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz
);
-- One open digest per subscriber, address and period.
CREATE UNIQUE INDEX email_digests_open ON email_digests (subscriber_id, target, digest_at) WHERE status = 'held';
CREATE INDEX email_digests_due ON email_digests (next_attempt_at) WHERE status IN ('held', 'sending', 'retrying');

-- Addresses the SMTP server refused for good (5xx): nothing more is sent to them, by any account.
CREATE TABLE email_suppressions (
    address     text        PRIMARY KEY,  -- lower case
    reason      text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
