//! Monthly execution counts per organization, consumed atomically as executions
//! start.

use chrono::{DateTime, Utc};
use sea_orm::prelude::*;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ConnectionTrait, QuerySelect};

use crate::entities::usage_counter;
use crate::PersistenceError;

type Result<T> = std::result::Result<T, PersistenceError>;

/// Takes up to `wanted` executions from `org`'s allowance for `period` (`limit`
/// per period) and returns how many were granted. Call inside a write
/// transaction: the counter row is locked (PostgreSQL) or the database is
/// (SQLite), so concurrent nodes never grant past the limit.
pub async fn consume_executions(
    db: &impl ConnectionTrait,
    org: Uuid,
    period: &str,
    wanted: u64,
    limit: u64,
) -> Result<u64> {
    usage_counter::Entity::insert(usage_counter::ActiveModel {
        organization_id: Set(org),
        period: Set(period.to_owned()),
        executions: Set(0),
        quota_notified_at: Set(None),
    })
    .on_conflict(
        OnConflict::columns([
            usage_counter::Column::OrganizationId,
            usage_counter::Column::Period,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    let used = usage_counter::Entity::find_by_id((org, period.to_owned()))
        .lock_exclusive()
        .one(db)
        .await?
        .map(|c| u64::try_from(c.executions).unwrap_or(0))
        .unwrap_or(0);
    let granted = wanted.min(limit.saturating_sub(used));
    if granted > 0 {
        usage_counter::Entity::update_many()
            .col_expr(
                usage_counter::Column::Executions,
                Expr::col(usage_counter::Column::Executions)
                    .add(i64::try_from(granted).unwrap_or(i64::MAX)),
            )
            .filter(usage_counter::Column::OrganizationId.eq(org))
            .filter(usage_counter::Column::Period.eq(period))
            .exec(db)
            .await?;
    }
    Ok(granted)
}

/// Gives back `count` executions to `org`'s allowance for `period`: executions
/// that were counted as they were claimed and then given up before they started.
/// Never below zero.
pub async fn refund_executions(
    db: &impl ConnectionTrait,
    org: Uuid,
    period: &str,
    count: u64,
) -> Result<()> {
    let count = i64::try_from(count).unwrap_or(i64::MAX);
    usage_counter::Entity::update_many()
        .col_expr(
            usage_counter::Column::Executions,
            Expr::case(
                Expr::col(usage_counter::Column::Executions).gt(count),
                Expr::col(usage_counter::Column::Executions).sub(count),
            )
            .finally(0i64)
            .into(),
        )
        .filter(usage_counter::Column::OrganizationId.eq(org))
        .filter(usage_counter::Column::Period.eq(period))
        .exec(db)
        .await?;
    Ok(())
}

/// Marks the period's quota notification sent; true only for the first caller,
/// so the organization hears about it once per period.
pub async fn mark_quota_notified(
    db: &impl ConnectionTrait,
    org: Uuid,
    period: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let result = usage_counter::Entity::update_many()
        .col_expr(
            usage_counter::Column::QuotaNotifiedAt,
            Expr::value(Some(now)),
        )
        .filter(usage_counter::Column::OrganizationId.eq(org))
        .filter(usage_counter::Column::Period.eq(period))
        .filter(usage_counter::Column::QuotaNotifiedAt.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Executions counted for `org` in `period`.
pub async fn executions_used(db: &impl ConnectionTrait, org: Uuid, period: &str) -> Result<u64> {
    Ok(usage_counter::Entity::find_by_id((org, period.to_owned()))
        .one(db)
        .await?
        .map(|c| u64::try_from(c.executions).unwrap_or(0))
        .unwrap_or(0))
}
