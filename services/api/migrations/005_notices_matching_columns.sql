-- The other values the matching rules read of a notice, as `NoticeView` computes them, so that a preview counts in
-- SQL every criterion but keyword phrases (`_Selection` in app.py). `matching_columns` is set on the rows stored
-- with all of them; NULL for rows stored before, which previews match one by one.
ALTER TABLE notices
    ADD COLUMN countries text[],
    ADD COLUMN buyer_category text,
    ADD COLUMN procedure text,
    ADD COLUMN buyer_keys text[],
    ADD COLUMN sme_suitable text,
    ADD COLUMN reserved text,
    ADD COLUMN value_eur numeric,
    ADD COLUMN matching_columns boolean;
