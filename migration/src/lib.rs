//! Punctual's schema, as sea-orm migrations: the only place that shapes the tables.
//!
//! Migrations run on both SQLite and PostgreSQL, so they use sea-query's schema
//! builder rather than raw SQL unless a statement is engine-specific.

pub use sea_orm_migration::prelude::*;

/// Every migration, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![]
    }
}
