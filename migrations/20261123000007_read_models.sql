-- Read models, built by projections from the log and rebuildable from it
-- at any time. Projection code names these tables without a schema, so a
-- rebuild can build fresh copies in another schema (via search_path) and
-- swap them in.

-- What GET /orders/{id} serves.
CREATE TABLE order_summaries (
    order_id       UUID PRIMARY KEY,
    customer_id    TEXT        NOT NULL,
    status         TEXT        NOT NULL,
    currency       TEXT        NOT NULL,
    total          NUMERIC     NOT NULL,
    lines          JSONB       NOT NULL,
    payment_method TEXT        NOT NULL,
    correlation_id UUID,
    version        BIGINT      NOT NULL,
    placed_at      TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    shortages      JSONB,
    cancel_reason  TEXT,
    payment_error  TEXT
);

-- Stock now, per SKU and warehouse.
CREATE TABLE stock_levels (
    sku        TEXT        NOT NULL,
    warehouse  TEXT        NOT NULL,
    on_hand    BIGINT      NOT NULL,
    reserved   BIGINT      NOT NULL,
    position   BIGINT      NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (sku, warehouse)
);
-- No CHECK here: the projection upserts deltas, and PostgreSQL checks the
-- proposed delta row before ON CONFLICT turns it into an update. The
-- history below checks the invariant on every resulting level.

-- One row per change of a SKU's stock, with the totals and the per-warehouse
-- levels after it. "Stock of X at T" is the last row of X at or before T:
-- one descent of the (sku, at, ...) index, O(log n) in the history length.
CREATE TABLE stock_history (
    sku            TEXT        NOT NULL,
    at             TIMESTAMPTZ NOT NULL,
    transaction_id BIGINT      NOT NULL,
    position       BIGINT      NOT NULL,
    on_hand        BIGINT      NOT NULL,
    reserved       BIGINT      NOT NULL,
    available      BIGINT      NOT NULL,
    warehouses     JSONB       NOT NULL,
    event_type     TEXT        NOT NULL,
    PRIMARY KEY (sku, at, transaction_id, position),
    CHECK (reserved >= 0 AND available >= 0)
);

-- Payments per order.
CREATE TABLE payments (
    order_id   UUID PRIMARY KEY,
    status     TEXT        NOT NULL,
    amount     NUMERIC     NOT NULL,
    currency   TEXT        NOT NULL,
    method     TEXT        NOT NULL,
    attempts   INTEGER     NOT NULL,
    reference  TEXT,
    last_error TEXT,
    updated_at TIMESTAMPTZ NOT NULL
);

GRANT SELECT, INSERT, UPDATE, DELETE ON order_summaries, stock_levels, stock_history, payments
    TO orderstream_app;
