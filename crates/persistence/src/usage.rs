//! Counts for usage meters and the admin overview.

use chrono::{DateTime, Utc};
use sea_orm::prelude::*;
use sea_orm::sea_query::Alias;
use sea_orm::{ConnectionTrait, FromQueryResult, QuerySelect};

use crate::entities::{execution, organization, user};
use crate::PersistenceError;

type Result<T> = std::result::Result<T, PersistenceError>;

/// Executions of an organization created since `since`.
pub async fn count_executions_since(
    db: &impl ConnectionTrait,
    org: Uuid,
    since: DateTime<Utc>,
) -> Result<u64> {
    Ok(execution::Entity::find()
        .filter(execution::Column::OrganizationId.eq(org))
        .filter(execution::Column::CreatedAt.gte(since))
        .count(db)
        .await?)
}

#[derive(Debug, FromQueryResult)]
struct StatusCount {
    status: String,
    count: i64,
}

/// Executions by status since `since`, optionally for one organization.
pub async fn executions_by_status(
    db: &impl ConnectionTrait,
    org: Option<Uuid>,
    since: DateTime<Utc>,
) -> Result<Vec<(String, u64)>> {
    // Counted by the status as shown (`jobs::shown_status`).
    let shown = crate::jobs::shown_status_sql();
    let mut query = execution::Entity::find()
        .select_only()
        .column_as(shown.clone(), "status")
        .column_as(execution::Column::Id.count(), "count")
        .filter(execution::Column::CreatedAt.gte(since))
        .group_by(shown);
    if let Some(org) = org {
        query = query.filter(execution::Column::OrganizationId.eq(org));
    }
    let rows = query.into_model::<StatusCount>().all(db).await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.status, u64::try_from(r.count).unwrap_or(0)))
        .collect())
}

/// The lag of the attempts that started since a moment (start minus due time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecentLag {
    /// Attempts that started.
    pub executions: u64,
    /// Their mean lag, in milliseconds.
    pub mean_ms: Option<i64>,
    /// Their largest lag, in milliseconds.
    pub max_ms: Option<i64>,
}

#[derive(Debug, FromQueryResult)]
struct LagRow {
    started: i64,
    total: Option<i64>,
    largest: Option<i64>,
}

/// The lag of the attempts started since `since`, over every organization.
pub async fn recent_lag(db: &impl ConnectionTrait, since: DateTime<Utc>) -> Result<RecentLag> {
    // The sum is cast: PostgreSQL sums a bigint column as numeric.
    let row = execution::Entity::find()
        .select_only()
        .column_as(execution::Column::LagMs.count(), "started")
        .column_as(Expr::cust("CAST(SUM(lag_ms) AS BIGINT)"), "total")
        .column_as(execution::Column::LagMs.max(), "largest")
        .filter(execution::Column::StartedAt.gte(since))
        .filter(execution::Column::LagMs.is_not_null())
        .into_model::<LagRow>()
        .one(db)
        .await?;
    let Some(row) = row else {
        return Ok(RecentLag::default());
    };
    let executions = u64::try_from(row.started).unwrap_or(0);
    Ok(RecentLag {
        executions,
        mean_ms: row
            .total
            .filter(|_| row.started > 0)
            .map(|total| total / row.started),
        max_ms: row.largest,
    })
}

/// Totals for the admin overview: organizations, users, jobs.
pub async fn totals(db: &impl ConnectionTrait) -> Result<(u64, u64, u64)> {
    Ok((
        organization::Entity::find().count(db).await?,
        user::Entity::find().count(db).await?,
        total_jobs(db).await?,
    ))
}

/// Jobs on the platform: the organizations' `job_count`s added up.
async fn total_jobs(db: &impl ConnectionTrait) -> Result<u64> {
    let total = organization::Entity::find()
        .select_only()
        // PostgreSQL's SUM of a bigint is a numeric.
        .column_as(
            Expr::col(organization::Column::JobCount)
                .sum()
                .cast_as(Alias::new("BIGINT")),
            "total",
        )
        .into_tuple::<Option<i64>>()
        .one(db)
        .await?
        .flatten()
        .unwrap_or(0);
    Ok(u64::try_from(total).unwrap_or(0))
}
