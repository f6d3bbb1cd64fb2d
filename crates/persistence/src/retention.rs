//! Pruning executions past their organization's retention and audit events past
//! the audit retention, a small batch at a time so dispatch never waits behind a
//! long delete.

use chrono::{DateTime, Utc};
use sea_orm::prelude::*;
use sea_orm::{ConnectionTrait, QueryOrder, QuerySelect, Select};

use crate::entities::{audit_event, execution, organization};
use crate::PersistenceError;

/// Organizations on `plan`.
pub async fn organizations_on_plan(
    db: &impl ConnectionTrait,
    plan: &str,
) -> Result<Vec<Uuid>, PersistenceError> {
    organization_ids(db, organization::Column::Plan.eq(plan)).await
}

/// Organizations on none of `plans` (their plan is no longer configured).
pub async fn organizations_on_other_plans(
    db: &impl ConnectionTrait,
    plans: &[&str],
) -> Result<Vec<Uuid>, PersistenceError> {
    organization_ids(
        db,
        organization::Column::Plan.is_not_in(plans.iter().copied()),
    )
    .await
}

async fn organization_ids(
    db: &impl ConnectionTrait,
    condition: sea_orm::sea_query::SimpleExpr,
) -> Result<Vec<Uuid>, PersistenceError> {
    Ok(organization::Entity::find()
        .select_only()
        .column(organization::Column::Id)
        .filter(condition)
        .into_tuple::<Uuid>()
        .all(db)
        .await?)
}

/// Deletes up to `batch` finished executions of `org` created before `cutoff`;
/// returns how many went. Pending and running executions are never pruned.
pub async fn prune_executions(
    db: &impl ConnectionTrait,
    org: Uuid,
    cutoff: DateTime<Utc>,
    batch: u64,
) -> Result<u64, PersistenceError> {
    let oldest = execution::Entity::find()
        .filter(execution::Column::OrganizationId.eq(org))
        .filter(execution::Column::CreatedAt.lt(cutoff))
        .filter(execution::Column::Status.is_not_in(["pending", "running"]))
        .order_by_asc(execution::Column::CreatedAt);
    delete_first(db, oldest, execution::Column::Id, batch).await
}

/// Deletes up to `batch` audit events, of any organization or none, recorded
/// before `cutoff`, oldest first; returns how many went.
pub async fn prune_audit_events(
    db: &impl ConnectionTrait,
    cutoff: DateTime<Utc>,
    batch: u64,
) -> Result<u64, PersistenceError> {
    let oldest = audit_event::Entity::find()
        .filter(audit_event::Column::CreatedAt.lt(cutoff))
        .order_by_asc(audit_event::Column::CreatedAt);
    delete_first(db, oldest, audit_event::Column::Id, batch).await
}

/// Deletes the first `batch` rows `rows` selects, by their `id`; returns how
/// many went. Ids first, then the delete: a bounded delete on both databases.
async fn delete_first<E: EntityTrait>(
    db: &impl ConnectionTrait,
    rows: Select<E>,
    id: E::Column,
    batch: u64,
) -> Result<u64, PersistenceError> {
    let ids: Vec<Uuid> = rows
        .select_only()
        .column(id)
        .limit(batch)
        .into_tuple()
        .all(db)
        .await?;
    if ids.is_empty() {
        return Ok(0);
    }
    let result = E::delete_many().filter(id.is_in(ids)).exec(db).await?;
    Ok(result.rows_affected)
}
