-- When each API key last authenticated a call, to within `_KEY_USE_RECORDED_EVERY` (app.py): what an account reads
-- before revoking a key it rotated away from. NULL: not used since the column exists.
ALTER TABLE api_keys ADD COLUMN last_used_at timestamptz;
