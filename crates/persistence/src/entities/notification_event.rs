//! The `notification_events` table.

use sea_orm::entity::prelude::*;

/// One row of `notification_events`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notification_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub job_id: Option<Uuid>,
    pub kind: String,
    pub created_at: DateTimeUtc,
}

/// Relations of `notification_events`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
