//! The engine's queues as partial indexes: pending executions by `run_after`,
//! running ones by `lease_expires_at`. They replace `(status, run_after)` and
//! `(status, lease_expires_at)`, which held an entry for every execution ever
//! recorded and took one more on each status change; an execution now enters
//! each queue index only while it is in that state, and a finished one in none.
//! Likewise the jobs in a failure streak: after a batch of successes the engine
//! looks among those only.

use sea_orm_migration::prelude::*;

use crate::table_builders::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const PENDING: &str = "ix_executions_pending_run_after";
const RUNNING: &str = "ix_executions_running_lease_expires_at";
const FAILING: &str = "ix_jobs_failing_id";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for old in [
            "ix_executions_status_run_after",
            "ix_executions_status_lease_expires_at",
        ] {
            manager
                .drop_index(Index::drop().name(old).table(name("executions")).to_owned())
                .await?;
        }
        manager
            .create_index(
                index("executions", &["run_after"])
                    .name(PENDING)
                    .and_where(Expr::col(name("status")).eq("pending"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index("executions", &["lease_expires_at"])
                    .name(RUNNING)
                    .and_where(Expr::col(name("status")).eq("running"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index("jobs", &["id"])
                    .name(FAILING)
                    .and_where(Expr::col(name("consecutive_failures")).gt(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name(FAILING).table(name("jobs")).to_owned())
            .await?;
        for new in [PENDING, RUNNING] {
            manager
                .drop_index(Index::drop().name(new).table(name("executions")).to_owned())
                .await?;
        }
        manager
            .create_index(index("executions", &["status", "run_after"]))
            .await?;
        manager
            .create_index(index("executions", &["status", "lease_expires_at"]))
            .await
    }
}
