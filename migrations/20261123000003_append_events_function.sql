-- Appends events to one or more streams atomically, in one round trip.
--
-- Streams are locked with transaction-scoped advisory locks, in a fixed
-- order (no deadlocks), *before* the transaction writes anything: so the
-- transaction id is assigned after every lock is held, and two appends to
-- the same stream get transaction ids in the order of their versions. That
-- keeps every stream in version order in the (transaction_id, position)
-- order readers see.
--
-- The common case (new events, expectations met) does no idempotency work:
-- a repeat shows up as a version mismatch or as a unique violation on
-- event_id, and only then are the stored events compared: on a mismatch
-- here, on a unique violation by the caller calling again with
-- p_check_repeat.
--
-- Errors carry custom SQLSTATEs that the Rust side maps to typed errors:
--   OS001 wrong expected version (DETAIL: stream, expected, actual as JSON)
--   OS002 an event id is stored with other content (DETAIL: event id)
--   OS003 some but not all event ids of the append are already stored
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
    p_correlation_ids   UUID[],
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

    txid := pg_current_xact_id()::text::bigint;
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
