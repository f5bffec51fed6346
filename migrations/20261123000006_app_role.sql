-- A role for the running service that cannot rewrite history: on the log it
-- may only INSERT and SELECT. Grant it to a login role (see README).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'orderstream_app') THEN
        CREATE ROLE orderstream_app NOLOGIN;
    END IF;
END;
$$;

GRANT SELECT, INSERT ON events TO orderstream_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON subscription_checkpoints, snapshots TO orderstream_app;
GRANT EXECUTE ON FUNCTION append_events TO orderstream_app;
