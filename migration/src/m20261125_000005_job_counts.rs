//! Each organization's number of jobs, kept by the job inserts and deletes, so
//! that creating a job checks the plan's `max_jobs` against one row (locked by
//! the increment until the creation commits: concurrent creates cannot pass the
//! limit together) instead of counting the organization's jobs every time.

use sea_orm_migration::prelude::*;

use crate::table_builders::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(name("organizations"))
                    .add_column(
                        ColumnDef::new(name("job_count"))
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE organizations SET job_count = \
                 (SELECT COUNT(*) FROM jobs WHERE jobs.organization_id = organizations.id)",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(name("organizations"))
                    .drop_column(name("job_count"))
                    .to_owned(),
            )
            .await
    }
}
