//! The due-jobs index holds only jobs with a next run. It held an entry for
//! every finished once-job and paused job too, and every dispatch that ended a
//! job's schedule (`next_run_at` set to NULL) inserted one more; now such an
//! update leaves the index alone. On PostgreSQL the jobs table also keeps 15% of
//! each page free, so the engine's updates that change no indexed column (a
//! once-job's completion, a failure streak's end) can stay on their page as
//! heap-only tuples instead of adding an entry to every index of `jobs`.

use sea_orm_migration::prelude::*;

use crate::table_builders::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const FULL: &str = "ix_jobs_next_run_at";
const DUE: &str = "ix_jobs_due_next_run_at";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                index("jobs", &["next_run_at"])
                    .name(DUE)
                    .and_where(Expr::col(name("next_run_at")).is_not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(Index::drop().name(FULL).table(name("jobs")).to_owned())
            .await?;
        on_postgres(manager, "ALTER TABLE jobs SET (fillfactor = 85)").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        on_postgres(manager, "ALTER TABLE jobs RESET (fillfactor)").await?;
        manager
            .create_index(index("jobs", &["next_run_at"]))
            .await?;
        manager
            .drop_index(Index::drop().name(DUE).table(name("jobs")).to_owned())
            .await
    }
}
