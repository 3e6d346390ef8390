-- Change alerts: what changed since the version of the notice the target was sent, and the planned purchase a
-- call for tender follows, as found when the delivery was recorded (replays and retries show the same).
ALTER TABLE deliveries ADD COLUMN changes jsonb;
ALTER TABLE deliveries ADD COLUMN announced_by text;
CREATE INDEX deliveries_target_notice ON deliveries (subscriber_id, channel, target, notice_id);
