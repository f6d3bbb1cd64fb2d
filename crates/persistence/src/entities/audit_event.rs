//! The `audit_events` table.

use sea_orm::entity::prelude::*;

/// One row of `audit_events`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Option<Uuid>,
    /// `user`, `api_key`, `admin` or `system`.
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// JSON object; never secrets.
    #[sea_orm(column_type = "Text")]
    pub metadata: String,
    pub created_at: DateTimeUtc,
}

/// Relations of `audit_events`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
