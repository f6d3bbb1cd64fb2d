//! The `usage_counters` table.

use sea_orm::entity::prelude::*;

/// One row of `usage_counters`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_counters")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub period: String,
    pub executions: i64,
    pub quota_notified_at: Option<DateTimeUtc>,
}

/// Relations of `usage_counters`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
