-- Idempotency keys of POST /orders: the first request with a key stores it
-- with a hash of its body and the order id the key stands for; a repeat
-- with the same body gets that order back, another body is refused.
CREATE TABLE idempotency_keys (
    key          TEXT        PRIMARY KEY,
    request_hash BYTEA       NOT NULL,
    order_id     UUID        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

GRANT SELECT, INSERT ON idempotency_keys TO orderstream_app;
