//! On PostgreSQL, executions no longer check their organization by foreign key.
//! The check cost every inserted execution a lookup of the organization row
//! and a `KEY SHARE` lock on it — the one row every dispatch transaction of
//! that organization then locks, on every node — and it guarded nothing the
//! job's key does not: an execution belongs to a job (`fk_executions_job_id`),
//! the job to the organization, and deleting the organization still cascades
//! through its jobs to their executions. SQLite keeps the constraint (dropping
//! one there means rebuilding the table, and its check is an in-process lookup).

use crate::table_builders::on_postgres;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const CONSTRAINT: &str = "fk_executions_organization_id";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        on_postgres(
            manager,
            &format!("ALTER TABLE executions DROP CONSTRAINT IF EXISTS {CONSTRAINT}"),
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        on_postgres(
            manager,
            &format!(
                "ALTER TABLE executions ADD CONSTRAINT {CONSTRAINT} \
                 FOREIGN KEY (organization_id) REFERENCES organizations(id) ON DELETE CASCADE"
            ),
        )
        .await
    }
}
