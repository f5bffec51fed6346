-- Everything the running service does, possible as orderstream_app (a
-- NOLOGIN role that login roles are members of, see 20261123000006), with
-- no right to change the schema or rewrite the log. The owner that runs
-- migrations keeps all DDL.

-- /ready and `serve` compare the applied migrations with the binary's.
-- sqlx creates this table before the first migration runs, so it exists.
GRANT SELECT ON _sqlx_migrations TO orderstream_app;

-- Idempotency keys expire: the cleanup deletes old ones.
GRANT DELETE ON idempotency_keys TO orderstream_app;

-- Tables that later migrations create (as the same owner) in public are
-- usable by the service without a GRANT of their own. A table the service
-- must not change (as events) revokes explicitly in its migration; the
-- events table also has a trigger against any change, for everyone.
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO orderstream_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO orderstream_app;

-- Rebuilding a read model fills fresh copies of its tables in a schema of
-- its own, then drops the live tables and moves the copies in
-- (projections/src/runtime/rebuild.rs). Creating and dropping tables is
-- DDL, which the service role has no right to do anywhere. Instead, these
-- two SECURITY DEFINER functions, owned by the migrations' owner, do
-- exactly that and nothing else, for the tables listed here only: the
-- service cannot create any other object, nor touch the log or the
-- runtime's tables, and what it can do to a read model (empty it) it could
-- already do with DELETE. A migration that adds a read-model table lists
-- it here; a rebuild of a table not listed fails and says so.
CREATE TABLE rebuildable_tables (
    table_name TEXT PRIMARY KEY
);
INSERT INTO rebuildable_tables (table_name)
VALUES ('order_summaries'), ('stock_levels'), ('stock_history'), ('payments');
-- Not for the service to change.
REVOKE ALL ON rebuildable_tables FROM orderstream_app;
GRANT SELECT ON rebuildable_tables TO orderstream_app;

-- The schema a projection's rebuild fills, after checking the names it is
-- given: a plain lower-case projection name, and only listed tables.
CREATE FUNCTION rebuild_schema(p_projection TEXT, p_tables TEXT[]) RETURNS TEXT
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    unlisted TEXT;
BEGIN
    IF p_projection IS NULL OR p_projection !~ '^[a-z][a-z0-9_]{0,39}$' THEN
        RAISE EXCEPTION 'not a projection name: %', p_projection
            USING ERRCODE = '22023';
    END IF;
    IF coalesce(cardinality(p_tables), 0) = 0 THEN
        RAISE EXCEPTION 'projection % names no table to rebuild', p_projection
            USING ERRCODE = '22023';
    END IF;
    SELECT t INTO unlisted
      FROM unnest(p_tables) AS t
     WHERE t IS NULL OR t NOT IN (SELECT r.table_name FROM public.rebuildable_tables r)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'table % is not a rebuildable read-model table '
                        '(a migration lists it in rebuildable_tables)', unlisted
            USING ERRCODE = '42501';
    END IF;
    RETURN 'rebuild_' || p_projection;
END;
$$;

-- Creates empty copies of p_tables (indexes, defaults and constraints
-- included) in the projection's rebuild schema, dropping whatever an
-- earlier, abandoned rebuild left there. Each copy gets the privileges the
-- live table has, so the service (and any role an operator granted to)
-- keeps them after the swap. Returns the schema's name.
CREATE FUNCTION rebuild_prepare(p_projection TEXT, p_tables TEXT[]) RETURNS TEXT
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    target_schema TEXT := public.rebuild_schema(p_projection, p_tables);
    live_table TEXT;
    privilege RECORD;
BEGIN
    EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', target_schema);
    EXECUTE format('CREATE SCHEMA %I', target_schema);
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO orderstream_app', target_schema);
    FOREACH live_table IN ARRAY p_tables LOOP
        EXECUTE format('CREATE TABLE %I.%I (LIKE public.%I INCLUDING ALL)',
                       target_schema, live_table, live_table);
        FOR privilege IN
            SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END
                       AS grantee,
                   string_agg(a.privilege_type, ', ') AS privileges
              FROM pg_class c
                   CROSS JOIN LATERAL aclexplode(c.relacl) AS a
                   LEFT JOIN pg_roles r ON r.oid = a.grantee
             WHERE c.oid = format('public.%I', live_table)::regclass
               AND a.grantee <> c.relowner
             GROUP BY 1
        LOOP
            EXECUTE format('GRANT %s ON %I.%I TO %s', privilege.privileges,
                           target_schema, live_table, privilege.grantee);
        END LOOP;
    END LOOP;
    RETURN target_schema;
END;
$$;

-- Swaps the filled copies in: locks the live tables (in the order given,
-- under the caller's lock_timeout), drops them, moves the copies into
-- public and drops the rebuild schema. Runs in the caller's transaction,
-- which also moves the checkpoint: readers see the old tables until it
-- commits, the new ones after.
CREATE FUNCTION rebuild_swap(p_projection TEXT, p_tables TEXT[]) RETURNS VOID
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    target_schema TEXT := public.rebuild_schema(p_projection, p_tables);
    live_table TEXT;
BEGIN
    FOREACH live_table IN ARRAY p_tables LOOP
        EXECUTE format('LOCK TABLE public.%I IN ACCESS EXCLUSIVE MODE', live_table);
    END LOOP;
    FOREACH live_table IN ARRAY p_tables LOOP
        EXECUTE format('DROP TABLE public.%I', live_table);
        EXECUTE format('ALTER TABLE %I.%I SET SCHEMA public', target_schema, live_table);
    END LOOP;
    EXECUTE format('DROP SCHEMA %I', target_schema);
END;
$$;

REVOKE EXECUTE ON FUNCTION rebuild_schema(TEXT, TEXT[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION rebuild_prepare(TEXT, TEXT[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION rebuild_swap(TEXT, TEXT[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rebuild_prepare(TEXT, TEXT[]) TO orderstream_app;
GRANT EXECUTE ON FUNCTION rebuild_swap(TEXT, TEXT[]) TO orderstream_app;
