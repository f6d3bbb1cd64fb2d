//! Punctual's schema, as sea-orm migrations: the only place that shapes the tables.
//!
//! Migrations run on both SQLite and PostgreSQL, so they use sea-query's schema
//! builder rather than raw SQL unless a statement is engine-specific. Times are
//! stored in UTC.

#![warn(missing_docs)]

pub use sea_orm_migration::prelude::*;

mod m20261125_000001_identity;
mod m20261125_000002_jobs;
mod m20261125_000003_plans_audit_notifications;
mod m20261125_000004_execution_queue_indexes;
mod m20261125_000005_job_counts;
mod m20261125_000006_due_jobs_index;
mod m20261202_000007_execution_organization_check;
mod m20261202_000008_job_key_index;
mod table_builders;

/// Every migration, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_identity::Migration),
            Box::new(m20261125_000002_jobs::Migration),
            Box::new(m20261125_000003_plans_audit_notifications::Migration),
            Box::new(m20261125_000004_execution_queue_indexes::Migration),
            Box::new(m20261125_000005_job_counts::Migration),
            Box::new(m20261125_000006_due_jobs_index::Migration),
            Box::new(m20261202_000007_execution_organization_check::Migration),
            Box::new(m20261202_000008_job_key_index::Migration),
        ]
    }
}
