-- What a published notice version said (its canonical JSON without the version, hashed): the same content is
-- never published twice, and changed content under a version already used becomes a new version.
ALTER TABLE published_notices ADD COLUMN content_hash text;
CREATE INDEX published_notices_content ON published_notices (notice_id, content_hash);
