//! Jobs and their executions. `jobs.next_run_at` is indexed so "due jobs" is a
//! range scan (NULL when a job is paused or finished, so those rows never match);
//! the unique (job, scheduled_for, attempt) is the last guard against a double
//! dispatch.

use sea_orm_migration::prelude::*;

use crate::table_builders::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(name("jobs"))
                    .col(uuid_pk("id"))
                    .col(uuid("organization_id"))
                    .col(text_null("key"))
                    .col(text("name"))
                    .col(text("url"))
                    .col(text("method"))
                    .col(text("headers"))
                    .col(text_null("body"))
                    .col(big_integer("timeout_ms"))
                    .col(text("schedule_kind"))
                    .col(text_null("cron"))
                    .col(text_null("timezone"))
                    .col(timestamp_null("run_at"))
                    .col(integer("retry_max_attempts", 1))
                    .col(big_integer("retry_min_backoff_ms"))
                    .col(big_integer("retry_max_backoff_ms"))
                    .col(text("concurrency"))
                    .col(text("missed_runs"))
                    .col(big_integer("catch_up_grace_ms"))
                    .col(boolean("enabled", true))
                    .col(timestamp_null("next_run_at"))
                    .col(integer("consecutive_failures", 0))
                    .col(text_null("disabled_reason"))
                    .col(timestamp_null("completed_at"))
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    .foreign_key(&mut cascade("jobs", "organization_id", "organizations"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique("jobs", &["organization_id", "key"]))
            .await?;
        manager
            .create_index(index("jobs", &["next_run_at"]))
            .await?;
        manager
            .create_index(index("jobs", &["organization_id", "created_at", "id"]))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(name("executions"))
                    .col(uuid_pk("id"))
                    .col(uuid("organization_id"))
                    .col(uuid("job_id"))
                    .col(timestamp("scheduled_for"))
                    .col(integer("attempt", 1))
                    .col(text("trigger"))
                    .col(text("status"))
                    .col(timestamp("run_after"))
                    .col(timestamp_null("started_at"))
                    .col(timestamp_null("finished_at"))
                    .col(big_integer_null("duration_ms"))
                    .col(big_integer_null("lag_ms"))
                    .col(integer_null("status_code"))
                    .col(text_null("response_body"))
                    .col(text_null("error"))
                    .col(text_null("node_id"))
                    .col(timestamp_null("lease_expires_at"))
                    .col(timestamp("created_at"))
                    .foreign_key(&mut cascade("executions", "job_id", "jobs"))
                    .foreign_key(&mut cascade(
                        "executions",
                        "organization_id",
                        "organizations",
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique(
                "executions",
                &["job_id", "scheduled_for", "attempt"],
            ))
            .await?;
        manager
            .create_index(index("executions", &["status", "run_after"]))
            .await?;
        manager
            .create_index(index("executions", &["status", "lease_expires_at"]))
            .await?;
        manager
            .create_index(index("executions", &["job_id", "created_at", "id"]))
            .await?;
        manager
            .create_index(index("executions", &["organization_id", "created_at"]))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(name("executions")).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(name("jobs")).to_owned())
            .await
    }
}
