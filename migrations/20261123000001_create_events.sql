-- The append-only event log: the single source of truth.
--
-- Readers see the log in (transaction_id, position) order and only up to the
-- oldest transaction still running (pg_snapshot_xmin), so an event whose
-- transaction commits late can never sort before a checkpoint already taken.
CREATE TABLE events (
    position       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transaction_id BIGINT      NOT NULL,
    stream_id      TEXT        NOT NULL,
    stream_version BIGINT      NOT NULL,
    event_id       UUID        NOT NULL,
    event_type     TEXT        NOT NULL,
    schema_version INTEGER     NOT NULL,
    data           JSONB       NOT NULL,
    metadata       JSONB       NOT NULL,
    correlation_id UUID,
    causation_id   UUID,
    recorded_at    TIMESTAMPTZ NOT NULL,
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version),
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_stream_version_positive CHECK (stream_version > 0)
);

CREATE INDEX events_log_order ON events (transaction_id, position);
CREATE INDEX events_category_log_order
    ON events (split_part(stream_id, '-', 1), transaction_id, position);
CREATE INDEX events_correlation ON events (correlation_id, transaction_id, position)
    WHERE correlation_id IS NOT NULL;
