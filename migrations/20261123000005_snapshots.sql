-- Latest snapshot of an aggregate's state per stream: an optimisation only,
-- never the source of truth.
CREATE TABLE snapshots (
    stream_id      TEXT PRIMARY KEY,
    stream_version BIGINT      NOT NULL,
    schema_version INTEGER     NOT NULL,
    state          JSONB       NOT NULL,
    taken_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
