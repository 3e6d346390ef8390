-- Every document ingest accepted, as received: the source of truth to re-parse when a parser improves.
CREATE TABLE raw_documents (
    sha256        text        PRIMARY KEY,
    source        text        NOT NULL,
    origin        text        NOT NULL,
    filename      text,
    content_type  text,
    size_bytes    integer     NOT NULL,
    notices       integer     NOT NULL,
    body          bytea       NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now()
);

-- Dedupe key: one notice version is published once, whatever the number of times it is received.
CREATE TABLE published_notices (
    notice_id     text        NOT NULL,
    version       text        NOT NULL,
    sha256        text        NOT NULL REFERENCES raw_documents (sha256),
    published_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (notice_id, version)
);
CREATE INDEX published_notices_document ON published_notices (sha256);
