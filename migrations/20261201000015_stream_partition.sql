-- Consumer groups: a subscription may be split into partitions, each with
-- its own owner and checkpoint, by a hash of the stream's id.
--
-- The hash is of the id without its category (`order-42` and
-- `payment-42` hash alike, as Message DB's consumer groups do), so one
-- entity's streams land in one partition, and it is md5, whose value no
-- PostgreSQL release changes (`hashtext` is internal and may): a stream
-- must never move to another partition while checkpoints depend on where
-- it was.
CREATE FUNCTION stream_partition(p_stream_id TEXT, p_partitions INTEGER) RETURNS INTEGER
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN (('x' || left(md5(substr(p_stream_id, strpos(p_stream_id, '-') + 1)), 8))::bit(32)::bigint
        % p_partitions)::integer;
