//! The `organizations` table.

use sea_orm::entity::prelude::*;

/// One row of `organizations`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "organizations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub plan: String,
    pub suspended_at: Option<DateTimeUtc>,
    /// Jobs the organization has, kept by [`crate::jobs::insert_job`] and
    /// [`crate::jobs::delete_job`].
    pub job_count: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

/// Relations of `organizations`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
