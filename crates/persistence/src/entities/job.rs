//! The `jobs` table.

use sea_orm::entity::prelude::*;

/// One row of `jobs`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "jobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub key: Option<String>,
    pub name: String,
    pub url: String,
    pub method: String,
    /// JSON object of header name to value.
    #[sea_orm(column_type = "Text")]
    pub headers: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub body: Option<String>,
    pub timeout_ms: i64,
    /// `cron` or `once`.
    pub schedule_kind: String,
    pub cron: Option<String>,
    pub timezone: Option<String>,
    pub run_at: Option<DateTimeUtc>,
    pub retry_max_attempts: i32,
    pub retry_min_backoff_ms: i64,
    pub retry_max_backoff_ms: i64,
    pub concurrency: String,
    pub missed_runs: String,
    pub catch_up_grace_ms: i64,
    pub enabled: bool,
    /// The next occurrence to dispatch; NULL when paused or finished.
    pub next_run_at: Option<DateTimeUtc>,
    pub consecutive_failures: i32,
    pub disabled_reason: Option<String>,
    pub completed_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

/// Relations of `jobs`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
