-- The payment stream's version last applied to each payments row: a
-- redelivered event (reset, replay, a stale owner) is then a no-op instead
-- of moving the row back to an older state.
ALTER TABLE payments
    ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
