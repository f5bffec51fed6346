//! The embedded cluster: created once, reused across runs and by a second
//! process, stopped with its owner.

use pg_embedded::{Cluster, ClusterOptions};
use sqlx::Connection;

fn fast() -> ClusterOptions {
    ClusterOptions {
        unsafe_fast: true,
        ..ClusterOptions::default()
    }
}

async fn query_one(url: &str, sql: &str) -> Result<i64, sqlx::Error> {
    let mut connection = sqlx::PgConnection::connect(url).await?;
    let value = sqlx::query_scalar(sql).fetch_one(&mut connection).await?;
    connection.close().await?;
    Ok(value)
}

#[tokio::test]
async fn a_persistent_cluster_keeps_its_data_across_restarts_and_is_shared_while_running() {
    let parent = tempfile::tempdir().expect("temp dir");
    let data_dir = parent.path().join("pg");
    // The service user must be able to reach the data directory.
    std::fs::set_permissions(
        parent.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");

    let first = tokio::task::spawn_blocking({
        let data_dir = data_dir.clone();
        move || Cluster::start_persistent(&data_dir, &fast())
    })
    .await
    .expect("join")
    .expect("first start");
    query_one(&first.url("postgres"), "SELECT 1::bigint")
        .await
        .expect("connect");
    let mut admin = sqlx::PgConnection::connect(&first.url("postgres"))
        .await
        .expect("connect");
    sqlx::query("CREATE DATABASE kept")
        .execute(&mut admin)
        .await
        .expect("create");
    admin.close().await.expect("close");

    // A second start while the first runs connects to the same server.
    let second = tokio::task::spawn_blocking({
        let data_dir = data_dir.clone();
        move || Cluster::start_persistent(&data_dir, &fast())
    })
    .await
    .expect("join")
    .expect("second start");
    assert_eq!(second.socket_dir(), first.socket_dir());
    drop(second);
    query_one(&first.url("kept"), "SELECT 1::bigint")
        .await
        .expect("the second handle did not stop the first's server");

    let url = first.url("postgres");
    tokio::task::spawn_blocking(move || first.stop())
        .await
        .expect("stop");
    assert!(
        sqlx::PgConnection::connect(&url).await.is_err(),
        "the server stopped with its owner"
    );

    let again = tokio::task::spawn_blocking({
        let data_dir = data_dir.clone();
        move || Cluster::start_persistent(&data_dir, &fast())
    })
    .await
    .expect("join")
    .expect("restart");
    let kept: i64 = query_one(
        &again.url("postgres"),
        "SELECT count(*) FROM pg_database WHERE datname = 'kept'",
    )
    .await
    .expect("query");
    assert_eq!(kept, 1, "data survives a restart");
}

#[test]
fn client_programs_are_found_beside_the_server_binaries_and_unknown_ones_are_named() {
    let pg_dump = pg_embedded::client_program("pg_dump").expect("pg_dump is installed");
    assert!(pg_dump.ends_with("pg_dump"));
    let psql = pg_embedded::client_program("psql").expect("psql is installed");
    assert_eq!(pg_dump.parent(), psql.parent());
    let missing = pg_embedded::client_program("no_such_program").expect_err("not installed");
    assert!(missing.to_string().contains("no_such_program"), "{missing}");
}
