-- The log epoch: keeps the log's (transaction_id, position) order and its
-- visibility horizon valid when the database moves to another cluster.
--
-- The log stores pg_current_xact_id() with each event and readers see the
-- events of transactions below pg_snapshot_xmin (see event-store/src/log.rs).
-- Transaction ids belong to a cluster, not to a database: after pg_dump and
-- a restore into another cluster (or logical replication, or a move to a
-- managed PostgreSQL) the new cluster's ids start low, so every stored
-- event sits above the new horizon (invisible) and every new event sorts
-- before the stored ones (behind every checkpoint). Nothing fails; the
-- system just stops.
--
-- So every transaction id the store writes or compares is
-- `pg_current_xact_id() + offset`, and the horizon readers use is
-- `pg_snapshot_xmin(...) + offset`. The offset lives in the database, so a
-- dump carries it with the events. When stored ids are ahead of anything
-- this cluster can produce, ensure_log_order() raises the offset once so
-- that every later id sorts after every stored one. Stored ids and
-- checkpoints are never rewritten (the log is append-only), and a cursor
-- taken before the shift stays a valid place in the log.

CREATE TABLE log_epoch (
    -- One row: the key can only be true.
    only_row              BOOLEAN     PRIMARY KEY DEFAULT true CHECK (only_row),
    transaction_id_offset BIGINT      NOT NULL CHECK (transaction_id_offset >= 0),
    shifted_at            TIMESTAMPTZ
);
INSERT INTO log_epoch (transaction_id_offset) VALUES (0);

-- The offset an appending transaction adds to its id.
--
-- It first takes the shared form of the log-epoch lock (advisory class 3),
-- held to the end of the transaction: a shift takes the exclusive form, so
-- it waits for every append that has read the old offset, and an append
-- that comes after it waits and then reads the new one. Shared advisory
-- locks live in the lock manager's memory and write nothing to disk, and
-- shared holders never wait for each other: the hot path pays one lock
-- table entry.
--
-- VOLATILE and in PL/pgSQL on purpose: in READ COMMITTED every statement of
-- a volatile function takes a fresh snapshot, so the SELECT after the lock
-- sees a shift that committed while the caller waited, even when the caller
-- is a single statement whose own snapshot is older (the stream-creation
-- INSERT in event-store/src/append.rs).
CREATE FUNCTION log_epoch_offset() RETURNS BIGINT
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    current_offset BIGINT;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(3, 0);
    SELECT transaction_id_offset INTO STRICT current_offset FROM log_epoch;
    RETURN current_offset;
END;
$$;

-- Moves the offset when stored transaction ids are ahead of this cluster's,
-- so that every event appended from now on sorts after every stored event
-- and every stored event is below the readers' horizon. Returns the old and
-- new offsets when it moved them, no row when nothing was to do.
--
-- "Ahead" means: the largest stored id is at or above pg_snapshot_xmax +
-- offset, an id this cluster has not handed out yet. In normal running
-- every stored id comes from an assigned transaction and is below that, so
-- the check is false and costs one probe of the events_log_order index,
-- without any lock. Checkpoints are not looked at: each is the cursor of a
-- stored event (or the start), and events are never removed.
--
-- The new offset is computed from pg_snapshot_xmin, not xmax: a
-- transaction still running may already hold an id between the two and
-- append later; with xmin every id still to be stored, + new offset, is
-- above every stored one. New offset > old offset always (the check says
-- max >= xmax + old >= xmin + old), so offsets only grow.
--
-- Two processes starting at once: both may see "ahead" without the lock,
-- but the check is repeated under the exclusive lock, where the second one
-- sees the first one's committed shift (fresh snapshot per statement) and
-- does nothing.
--
-- SECURITY DEFINER so that the service role can heal a restored database on
-- its own without being allowed to write the offset in any other way; the
-- search_path is pinned as every SECURITY DEFINER function's must be.
CREATE FUNCTION ensure_log_order()
RETURNS TABLE (old_offset BIGINT, new_offset BIGINT, max_stored_transaction_id BIGINT)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public AS $$
DECLARE
    stored_max BIGINT;
    current_offset BIGINT;
    horizon_xmin BIGINT;
BEGIN
    SELECT (SELECT max(e.transaction_id) FROM events e), l.transaction_id_offset
      INTO stored_max, current_offset
      FROM log_epoch l;
    IF stored_max IS NULL
       OR stored_max < pg_snapshot_xmax(pg_current_snapshot())::text::bigint + current_offset
    THEN
        RETURN;
    END IF;

    -- Waits for every append that read the old offset to end; appends
    -- arriving now wait for this transaction to end.
    PERFORM pg_advisory_xact_lock(3, 0);
    SELECT (SELECT max(e.transaction_id) FROM events e), l.transaction_id_offset,
           pg_snapshot_xmin(pg_current_snapshot())::text::bigint
      INTO stored_max, current_offset, horizon_xmin
      FROM log_epoch l;
    IF stored_max < pg_snapshot_xmax(pg_current_snapshot())::text::bigint + current_offset THEN
        RETURN;
    END IF;

    UPDATE log_epoch
       SET transaction_id_offset = stored_max + 1 - horizon_xmin,
           shifted_at = clock_timestamp();
    RAISE WARNING 'orderstream: stored transaction ids (up to %) are ahead of this cluster''s '
                  '(a restore into another cluster?): log epoch offset moved from % to %',
                  stored_max, current_offset, stored_max + 1 - horizon_xmin;
    RETURN QUERY SELECT current_offset, stored_max + 1 - horizon_xmin, stored_max;
END;
$$;

-- append_events as before, with the offset added to the transaction id.
CREATE OR REPLACE FUNCTION append_events(
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

-- The service role reads the offset (log reads add it to the horizon) and
-- may heal a restored database itself; it cannot set the offset otherwise.
GRANT SELECT ON log_epoch TO orderstream_app;
GRANT EXECUTE ON FUNCTION log_epoch_offset() TO orderstream_app;
REVOKE EXECUTE ON FUNCTION ensure_log_order() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ensure_log_order() TO orderstream_app;

-- A dump taken before this migration existed and restored into another
-- cluster is healed right here, as the new version first migrates it.
SELECT ensure_log_order();
