-- The correlation id of the alerts.matched message a delivery came from: its attempts' log lines and its
-- alerts.delivered event carry it on, so a notice can be followed from ingest to the subscriber. NULL for
-- deliveries recorded before this column: those get a new id when they are sent.
ALTER TABLE deliveries ADD COLUMN correlation_id text;
