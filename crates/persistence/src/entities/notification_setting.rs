//! The `notification_settings` table.

use sea_orm::entity::prelude::*;

/// One row of `notification_settings`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notification_settings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// JSON array of addresses.
    #[sea_orm(column_type = "Text")]
    pub emails: String,
    pub webhook_url: Option<String>,
    pub on_failure: bool,
    pub on_auto_disable: bool,
    pub on_recovery: bool,
    pub updated_at: DateTimeUtc,
}

/// Relations of `notification_settings`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
