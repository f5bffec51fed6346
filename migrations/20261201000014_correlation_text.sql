-- Correlation ids as the caller gave them: any 1 to 128 visible ASCII
-- characters (X-Correlation-Id: order-import-42/abc), not only UUIDs, so a
-- flow started by another system is found by that system's own id. Ids the
-- service makes itself stay UUIDs, stored as their text. Causation ids stay
-- UUIDs: they are event ids.
--
-- The log is append-only through row triggers on UPDATE and DELETE and a
-- statement trigger on TRUNCATE (20261123000002). ALTER COLUMN ... TYPE
-- rewrites the table without firing any of them: no row is updated, the
-- rewrite is DDL. Positions, transaction ids and every other column are
-- copied as they are, and the events_correlation index is rebuilt on the
-- new type under its own name. The rewrite holds an ACCESS EXCLUSIVE lock
-- for as long as it takes (the store migrates without a statement timeout).

ALTER TABLE events
    ALTER COLUMN correlation_id TYPE TEXT USING correlation_id::text,
    -- The shape the API accepts; [!-~] is 0x21-0x7E.
    ADD CONSTRAINT events_correlation_id_shape
        CHECK (correlation_id ~ '^[!-~]{1,128}$');

-- The read model keeps the correlation id of the request that placed the
-- order. Rebuilds copy the live table's definition (LIKE ... INCLUDING
-- ALL), so they follow.
ALTER TABLE order_summaries
    ALTER COLUMN correlation_id TYPE TEXT USING correlation_id::text;

-- append_events takes the correlation ids as text. Its argument types
-- change, so the old function is dropped (CREATE OR REPLACE would add an
-- overload); the body is the one of 20261201000010_log_epoch.sql.
DROP FUNCTION append_events(TEXT[], TEXT[], BIGINT[], INTEGER[], INTEGER[], UUID[], TEXT[],
                            INTEGER[], JSONB[], JSONB[], UUID[], UUID[], BOOLEAN);

CREATE FUNCTION append_events(
    p_streams           TEXT[],
    p_expected_kinds    TEXT[],    -- 'any' | 'no_stream' | 'stream_exists' | 'exact'
    p_expected_versions BIGINT[],
    p_event_streams     INTEGER[], -- for each event, its stream's index in p_streams (1-based)
    p_event_offsets     INTEGER[], -- for each event, its place in its stream's events (1-based)
    p_event_ids         UUID[],
    p_event_types       TEXT[],
    p_schema_versions   INTEGER[],
    p_data              JSONB[],
    p_metadata          JSONB[],
    p_correlation_ids   TEXT[],
    p_causation_ids     UUID[],
    p_check_repeat      BOOLEAN
) RETURNS TABLE (
    event_id       UUID,
    stream_id      TEXT,
    stream_version BIGINT,
    "position"     BIGINT,
    transaction_id BIGINT,
    recorded_at    TIMESTAMPTZ,
    written        BOOLEAN
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    lock_key INTEGER;
    i INTEGER;
    current_versions BIGINT[] := '{}';
    current_version BIGINT;
    stored_count INTEGER;
    mismatched UUID;
    txid BIGINT;
    appended_at TIMESTAMPTZ;
BEGIN
    IF cardinality(p_streams) = 1 THEN
        PERFORM pg_advisory_xact_lock(1, hashtext(p_streams[1]));
    ELSE
        FOR lock_key IN
            SELECT DISTINCT hashtext(s) FROM unnest(p_streams) AS s ORDER BY 1
        LOOP
            PERFORM pg_advisory_xact_lock(1, lock_key);
        END LOOP;
    END IF;

    FOR i IN 1 .. cardinality(p_streams) LOOP
        SELECT coalesce(max(e.stream_version), 0) INTO current_version
          FROM events e WHERE e.stream_id = p_streams[i];
        IF p_check_repeat
           OR (p_expected_kinds[i] = 'no_stream' AND current_version <> 0)
           OR (p_expected_kinds[i] = 'stream_exists' AND current_version = 0)
           OR (p_expected_kinds[i] = 'exact' AND current_version <> p_expected_versions[i])
        THEN
            -- Maybe a repeat of an append already made: that succeeds.
            SELECT count(*),
                   (array_agg(e.event_id) FILTER (WHERE
                        e.stream_id <> p_streams[n.stream_index]
                        OR e.event_type <> n.event_type
                        OR e.schema_version <> n.schema_version
                        OR e.data <> n.data))[1]
              INTO stored_count, mismatched
              FROM unnest(p_event_streams, p_event_ids, p_event_types, p_schema_versions, p_data)
                       AS n(stream_index, event_id, event_type, schema_version, data)
              JOIN events e ON e.event_id = n.event_id;
            IF mismatched IS NOT NULL THEN
                RAISE EXCEPTION 'event % is already stored with other content', mismatched
                    USING ERRCODE = 'OS002', DETAIL = mismatched::text;
            END IF;
            IF stored_count > 0 AND stored_count = cardinality(p_event_ids) THEN
                RETURN QUERY
                    SELECT e.event_id, e.stream_id, e.stream_version, e.position,
                           e.transaction_id, e.recorded_at, false
                      FROM events e
                     WHERE e.event_id = ANY (p_event_ids)
                     ORDER BY e.transaction_id, e.position;
                RETURN;
            END IF;
            IF stored_count > 0 THEN
                RAISE EXCEPTION '% of % events of this append are already stored',
                    stored_count, cardinality(p_event_ids)
                    USING ERRCODE = 'OS003';
            END IF;
            IF NOT p_check_repeat
               OR (p_expected_kinds[i] = 'no_stream' AND current_version <> 0)
               OR (p_expected_kinds[i] = 'stream_exists' AND current_version = 0)
               OR (p_expected_kinds[i] = 'exact' AND current_version <> p_expected_versions[i])
            THEN
                RAISE EXCEPTION 'wrong expected version for stream %', p_streams[i]
                    USING ERRCODE = 'OS001',
                          DETAIL = json_build_object(
                              'stream_id', p_streams[i],
                              'expected', p_expected_kinds[i],
                              'expected_version', p_expected_versions[i],
                              'actual_version', current_version)::text;
            END IF;
        END IF;
        current_versions := current_versions || current_version;
    END LOOP;

    -- The offset (and its shared lock) first, after the stream locks: a
    -- shift never waits behind a stream lock, and the id is assigned after
    -- the lock, as everywhere else in this function.
    txid := log_epoch_offset() + pg_current_xact_id()::text::bigint;
    -- One instant for the whole append: it is atomic, so it happened at once.
    appended_at := clock_timestamp();
    RETURN QUERY
        INSERT INTO events AS e (transaction_id, stream_id, stream_version, event_id, event_type,
                                 schema_version, data, metadata, correlation_id, causation_id,
                                 recorded_at)
        SELECT txid, p_streams[n.stream_index], current_versions[n.stream_index] + n.stream_offset,
               n.event_id, n.event_type, n.schema_version, n.data, n.metadata,
               n.correlation_id, n.causation_id, appended_at
          FROM unnest(p_event_streams, p_event_offsets, p_event_ids, p_event_types,
                      p_schema_versions, p_data, p_metadata, p_correlation_ids, p_causation_ids)
                   WITH ORDINALITY
                   AS n(stream_index, stream_offset, event_id, event_type, schema_version, data,
                        metadata, correlation_id, causation_id, ordinal)
         ORDER BY n.ordinal
        RETURNING e.event_id, e.stream_id, e.stream_version, e.position, e.transaction_id,
                  e.recorded_at, true;
END;
$$;

GRANT EXECUTE ON FUNCTION append_events TO orderstream_app;

-- Idempotency keys expire (api/src/idempotency.rs): an expired key is
-- claimed again by overwriting its row, and a task of the serving process
-- deletes expired rows in small batches, oldest first.
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
GRANT UPDATE, DELETE ON idempotency_keys TO orderstream_app;
