-- The subscription runtime's own state.

-- Events a subscription could not handle after its retries, and the later
-- events of the same stream that wait behind them (blocked_by is then the
-- position of the failing event). Replaying takes them in log order.
CREATE TABLE parked_events (
    subscription   TEXT        NOT NULL,
    transaction_id BIGINT      NOT NULL,
    position       BIGINT      NOT NULL,
    event_id       UUID        NOT NULL,
    stream_id      TEXT        NOT NULL,
    stream_version BIGINT      NOT NULL,
    event_type     TEXT        NOT NULL,
    attempts       INTEGER     NOT NULL,
    last_error     TEXT        NOT NULL,
    blocked_by     BIGINT,
    parked_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (subscription, transaction_id, position)
);
CREATE INDEX parked_events_stream ON parked_events (subscription, stream_id);

-- Operator requests (replay parked, reset, rebuild) for the process that
-- owns a subscription to carry out.
CREATE TABLE subscription_requests (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription TEXT        NOT NULL,
    kind         TEXT        NOT NULL CHECK (kind IN ('replay_parked', 'reset', 'rebuild')),
    position     BIGINT,
    requested_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    done_at      TIMESTAMPTZ,
    outcome      TEXT
);
CREATE INDEX subscription_requests_pending ON subscription_requests (subscription, id)
    WHERE done_at IS NULL;

-- Who runs each subscription and how it is doing, for status endpoints.
CREATE TABLE subscription_status (
    name           TEXT PRIMARY KEY,
    owner          TEXT,
    state          TEXT        NOT NULL,
    heartbeat_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    rebuild_done   BIGINT,
    rebuild_total  BIGINT
);

GRANT SELECT, INSERT, UPDATE, DELETE ON parked_events, subscription_requests, subscription_status
    TO orderstream_app;
