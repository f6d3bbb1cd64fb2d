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
    let mut query = execution::Entity::find()
        .select_only()
        .column(execution::Column::Status)
        .column_as(execution::Column::Id.count(), "count")
        .filter(execution::Column::CreatedAt.gte(since))
        .group_by(execution::Column::Status);
    if let Some(org) = org {
        query = query.filter(execution::Column::OrganizationId.eq(org));
    }
    let rows = query.into_model::<StatusCount>().all(db).await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.status, u64::try_from(r.count).unwrap_or(0)))
        .collect())
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
