-- Subscription previews read the notices of the last N days: by publication date, or, for a notice that gives
-- none, by when its current version reached the API. `document` already holds the whole ClassifiedNotice.
ALTER TABLE notices ADD COLUMN received_at timestamptz;
UPDATE notices SET received_at = classified_at;
ALTER TABLE notices ALTER COLUMN received_at SET DEFAULT now(), ALTER COLUMN received_at SET NOT NULL;
ALTER TABLE notices ADD COLUMN listed_at timestamptz GENERATED ALWAYS AS (coalesce(published_at, received_at)) STORED;
CREATE INDEX notices_listed_at ON notices (listed_at DESC);

-- Every prefix (2 to 8 digits) of the notice's CPV codes, as the matcher computes them, so that a preview narrows
-- a CPV filter in SQL before matching. NULL for notices stored before this column: previews match those in full.
ALTER TABLE notices ADD COLUMN cpv_prefixes text[];
