//! Pruning executions past their organization's retention, a small batch at a
//! time so dispatch never waits behind a long delete.

use chrono::{DateTime, Utc};
use sea_orm::prelude::*;
use sea_orm::{ConnectionTrait, QueryOrder, QuerySelect};

use crate::entities::{audit_event, execution, organization};
use crate::PersistenceError;

/// Organizations on `plan`.
pub async fn organizations_on_plan(
    db: &impl ConnectionTrait,
    plan: &str,
) -> Result<Vec<Uuid>, PersistenceError> {
    Ok(organization::Entity::find()
        .filter(organization::Column::Plan.eq(plan))
        .all(db)
        .await?
        .into_iter()
        .map(|o| o.id)
        .collect())
}

/// Deletes up to `batch` finished executions of `org` created before `cutoff`;
/// returns how many went. Pending and running executions are never pruned.
pub async fn prune_executions(
    db: &impl ConnectionTrait,
    org: Uuid,
    cutoff: DateTime<Utc>,
    batch: u64,
) -> Result<u64, PersistenceError> {
    let ids: Vec<Uuid> = execution::Entity::find()
        .select_only()
        .column(execution::Column::Id)
        .filter(execution::Column::OrganizationId.eq(org))
        .filter(execution::Column::CreatedAt.lt(cutoff))
        .filter(execution::Column::Status.is_not_in(["pending", "running"]))
        .order_by_asc(execution::Column::CreatedAt)
        .limit(batch)
        .into_tuple()
        .all(db)
        .await?;
    if ids.is_empty() {
        return Ok(0);
    }
    let result = execution::Entity::delete_many()
        .filter(execution::Column::Id.is_in(ids))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}

/// Deletes up to `batch` audit events, of any organization or none, recorded
/// before `cutoff`, oldest first; returns how many went.
pub async fn prune_audit_events(
    db: &impl ConnectionTrait,
    cutoff: DateTime<Utc>,
    batch: u64,
) -> Result<u64, PersistenceError> {
    let ids: Vec<Uuid> = audit_event::Entity::find()
        .select_only()
        .column(audit_event::Column::Id)
        .filter(audit_event::Column::CreatedAt.lt(cutoff))
        .order_by_asc(audit_event::Column::CreatedAt)
        .limit(batch)
        .into_tuple()
        .all(db)
        .await?;
    if ids.is_empty() {
        return Ok(0);
    }
    let result = audit_event::Entity::delete_many()
        .filter(audit_event::Column::Id.is_in(ids))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}
