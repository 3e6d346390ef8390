-- The normalised tokens of the notice's title and description, and those of its title marked '^'
-- (`schemas.filtering.rules.search_keys`), so that a preview narrows a keyword query in SQL (the notice must have
-- one of the query's necessary tokens) before matching. NULL for notices stored before this column: previews
-- match those in full.
ALTER TABLE notices ADD COLUMN search_tokens text[];
