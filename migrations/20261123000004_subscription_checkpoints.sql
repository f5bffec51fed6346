-- Where each named subscription has got to in the log. The cursor is the
-- (transaction_id, position) of the last event it has handled.
CREATE TABLE subscription_checkpoints (
    name           TEXT PRIMARY KEY,
    transaction_id BIGINT      NOT NULL,
    position       BIGINT      NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
