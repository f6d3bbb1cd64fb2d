//! Nodes started together on a fresh PostgreSQL database: each applies the
//! migrations it finds missing, one after the other, and every one comes up.
//! (Several nodes means PostgreSQL; a SQLite database has one node, so this runs
//! when TEST_DATABASE_URL is set, as CI's second pass does.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use punctual_server::settings::Settings;
use punctual_server::startup::open_database;
use punctual_tests::TestDatabase;

#[tokio::test]
async fn nodes_starting_together_on_a_fresh_database_all_come_up() {
    if TestDatabase::backend() != punctual_persistence::Backend::Postgres {
        eprintln!("several nodes share PostgreSQL only: set TEST_DATABASE_URL to run this");
        return;
    }
    let fresh = TestDatabase::create().await;
    let mut settings = Settings::built_in("test").unwrap();
    settings.database.url = fresh.url.clone();
    let nodes = (0..4).map(|_| open_database(&settings));
    let opened = futures_util::future::join_all(nodes).await;
    for (node, database) in opened.into_iter().enumerate() {
        let database = database.unwrap_or_else(|e| panic!("node {node}: {e}"));
        let applied: Vec<punctual_persistence::sea_orm::QueryResult> = {
            use punctual_persistence::sea_orm::ConnectionTrait;
            database
                .conn()
                .query_all(punctual_persistence::sea_orm::Statement::from_string(
                    database.conn().get_database_backend(),
                    "SELECT version FROM seaql_migrations",
                ))
                .await
                .unwrap()
        };
        use punctual_migration::MigratorTrait;
        assert_eq!(
            applied.len(),
            punctual_migration::Migrator::migrations().len(),
            "every migration recorded once"
        );
    }
}
