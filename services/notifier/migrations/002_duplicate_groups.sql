-- The procedure a delivery's notice belongs to across sources: a subscriber hears of a procedure once, even when
-- BOAMP and TED both publish it.
ALTER TABLE deliveries ADD COLUMN duplicate_group text;
CREATE INDEX deliveries_duplicate_group ON deliveries (subscriber_id, duplicate_group) WHERE duplicate_group IS NOT NULL;
