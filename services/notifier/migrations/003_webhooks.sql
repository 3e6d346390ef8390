-- Webhook endpoints: the secret a rotation replaced (it keeps signing until it expires), the owner's address for
-- notices, and the state behind disabling: since when every call fails, when and why it was disabled, and whether
-- the owner has been told.
ALTER TABLE webhook_endpoints
    ADD COLUMN previous_secret            text,
    ADD COLUMN previous_secret_expires_at timestamptz,
    ADD COLUMN owner_email                text,
    ADD COLUMN failing_since              timestamptz,
    ADD COLUMN disabled_at                timestamptz,
    ADD COLUMN owner_notified_at          timestamptz;

-- An endpoint's deliveries, newest first, for GET /v1/webhook-endpoints/{id}/deliveries.
CREATE INDEX deliveries_webhook_target ON deliveries (target, created_at DESC) WHERE channel = 'webhook';
