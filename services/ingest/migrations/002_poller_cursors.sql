-- Where each poller stopped: the cursor of the next page to read, as the source understands it (JSON).
-- Written after every page whose documents were all accepted or dead-lettered, so a restart resumes there.
CREATE TABLE poller_cursors (
    source      text        PRIMARY KEY,
    cursor      jsonb       NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
