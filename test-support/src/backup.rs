//! A database copied the way an operator restores a backup (`pg_dump` piped
//! into `psql`), and a way to age a cluster so that the copy lands on a
//! server whose transaction ids are behind the dumped ones, as after any
//! real restore. Used by the restore tests of the store and of the service.

use std::process::{Command, Stdio};

use sqlx::PgPool;

use pg_embedded::{client_program, Cluster, ClusterOptions};

use crate::TestSupportError;

/// `pg_dump source | psql target` in one transaction, stopping at the first
/// error. Roles are not part of a dump: create them on the target first.
fn dump_and_restore(source_url: &str, target_url: &str) -> Result<(), TestSupportError> {
    let pg_dump = client_program("pg_dump")?;
    let psql = client_program("psql")?;
    let mut dump = Command::new(&pg_dump)
        .args(["--dbname", source_url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| TestSupportError::Spawn {
            command: pg_dump.display().to_string(),
            source,
        })?;
    let Some(dumped) = dump.stdout.take() else {
        return Err(TestSupportError::CommandFailed {
            command: "pg_dump".to_owned(),
            output: "no standard output to read".to_owned(),
        });
    };
    let restore = Command::new(&psql)
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction"])
        .args(["--dbname", target_url])
        .stdin(dumped)
        .stdout(Stdio::null())
        .output()
        .map_err(|source| TestSupportError::Spawn {
            command: psql.display().to_string(),
            source,
        })?;
    let dumped = dump
        .wait_with_output()
        .map_err(|source| TestSupportError::Spawn {
            command: pg_dump.display().to_string(),
            source,
        })?;
    if !dumped.status.success() {
        return Err(TestSupportError::CommandFailed {
            command: "pg_dump".to_owned(),
            output: String::from_utf8_lossy(&dumped.stderr).into_owned(),
        });
    }
    if !restore.status.success() {
        return Err(TestSupportError::CommandFailed {
            command: "psql (restore)".to_owned(),
            output: String::from_utf8_lossy(&restore.stderr).into_owned(),
        });
    }
    Ok(())
}

/// Consumes transaction ids on `pool`'s cluster until the next one is at
/// least `at_least`. Each block with an exception handler that writes is a
/// subtransaction with an id of its own: thousands in one round trip.
pub async fn advance_transaction_ids(pool: &PgPool, at_least: i64) -> Result<(), TestSupportError> {
    let mut connection = pool.acquire().await?;
    sqlx::query("CREATE TEMP TABLE IF NOT EXISTS burn_transaction_ids (n int)")
        .execute(&mut *connection)
        .await?;
    sqlx::query(&format!(
        "DO $$ BEGIN \
           FOR i IN 1 .. {at_least} - pg_snapshot_xmax(pg_current_snapshot())::text::bigint LOOP \
             BEGIN INSERT INTO burn_transaction_ids VALUES (i); \
             EXCEPTION WHEN OTHERS THEN NULL; END; \
           END LOOP; \
         END $$"
    ))
    .execute(&mut *connection)
    .await?;
    sqlx::query("DROP TABLE burn_transaction_ids")
        .execute(&mut *connection)
        .await?;
    Ok(())
}

/// A restore as an operator does one onto a new server: a fresh private
/// cluster (fast, non-durable settings: for tests), the roles the
/// migrations grant to (roles belong to a cluster, not to a dump), a
/// database `restored`, and `pg_dump source | psql` into it. Returns the
/// cluster (stopped on drop) and the restored database's URL.
pub async fn restore_into_fresh_cluster(
    source_url: &str,
    roles: &[&str],
) -> Result<(Cluster, String), TestSupportError> {
    let cluster = tokio::task::spawn_blocking(|| {
        Cluster::start_temporary(&ClusterOptions {
            unsafe_fast: true,
            ..ClusterOptions::default()
        })
    })
    .await??;
    let admin = PgPool::connect(&cluster.url("postgres")).await?;
    for role in roles {
        sqlx::query(&format!(r#"CREATE ROLE "{role}" NOLOGIN"#))
            .execute(&admin)
            .await?;
    }
    sqlx::query("CREATE DATABASE restored")
        .execute(&admin)
        .await?;
    admin.close().await;
    let target_url = cluster.url("restored");
    let (from, to) = (source_url.to_owned(), target_url.clone());
    tokio::task::spawn_blocking(move || dump_and_restore(&from, &to)).await??;
    Ok((cluster, target_url))
}
