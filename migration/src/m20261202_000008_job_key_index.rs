//! A job's client key is unique within its organization, and most jobs have none:
//! the unique index now holds only jobs with a key. It held an entry for every
//! keyless job too (NULLs never conflict, so those entries guarded nothing), and
//! every creation and every non-heap-only update of a job — each dispatch moves
//! `next_run_at`, an indexed column — wrote one more. Lookups by key
//! (`organization_id = … AND key = …`) imply `key IS NOT NULL`, so both
//! PostgreSQL and SQLite still answer them from this index.

use sea_orm_migration::prelude::*;

use crate::table_builders::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const EVERY_JOB: &str = "ux_jobs_organization_id_key";
const KEYED_JOBS: &str = "ux_jobs_keyed_organization_id_key";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                unique("jobs", &["organization_id", "key"])
                    .name(KEYED_JOBS)
                    .and_where(Expr::col(name("key")).is_not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(Index::drop().name(EVERY_JOB).table(name("jobs")).to_owned())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(unique("jobs", &["organization_id", "key"]))
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name(KEYED_JOBS)
                    .table(name("jobs"))
                    .to_owned(),
            )
            .await
    }
}
