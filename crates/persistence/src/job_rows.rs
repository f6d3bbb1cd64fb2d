//! Decoding the `jobs` rows the engine locks, by position on PostgreSQL.
//!
//! sea-orm's derived decoding looks every column up by name and, for each NULL
//! it decodes as `None`, formats an error message it then discards: about a
//! tenth of the engine's instructions per job in a drain (callgrind). The
//! engine's hot queries select the columns in the entity's order and read them
//! by index; SQLite keeps sea-orm's decoding.

use std::sync::LazyLock;

use sea_orm::{DbErr, FromQueryResult, IdenStatic, Iterable, QueryResult};
use sqlx::postgres::PgRow;
use sqlx::Row;

use crate::entities::job;

/// `jobs.<column>, …` in the order of `job::Model`'s fields, which is the order
/// [`job_from_row`] reads them in.
pub(crate) static JOB_COLUMNS: LazyLock<String> = LazyLock::new(|| {
    job::Column::iter()
        .map(|column| format!("jobs.{}", column.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
});

/// One row selected with [`JOB_COLUMNS`].
pub(crate) fn job_from_row(row: &QueryResult) -> Result<job::Model, DbErr> {
    match row.try_as_pg_row() {
        Some(row) => job_from_pg_row(row).map_err(|error| DbErr::Type(error.to_string())),
        None => job::Model::from_query_result(row, ""),
    }
}

fn job_from_pg_row(row: &PgRow) -> Result<job::Model, sqlx::Error> {
    Ok(job::Model {
        id: row.try_get(0)?,
        organization_id: row.try_get(1)?,
        key: row.try_get(2)?,
        name: row.try_get(3)?,
        url: row.try_get(4)?,
        method: row.try_get(5)?,
        headers: row.try_get(6)?,
        body: row.try_get(7)?,
        timeout_ms: row.try_get(8)?,
        schedule_kind: row.try_get(9)?,
        cron: row.try_get(10)?,
        timezone: row.try_get(11)?,
        run_at: row.try_get(12)?,
        retry_max_attempts: row.try_get(13)?,
        retry_min_backoff_ms: row.try_get(14)?,
        retry_max_backoff_ms: row.try_get(15)?,
        concurrency: row.try_get(16)?,
        missed_runs: row.try_get(17)?,
        catch_up_grace_ms: row.try_get(18)?,
        enabled: row.try_get(19)?,
        next_run_at: row.try_get(20)?,
        consecutive_failures: row.try_get(21)?,
        disabled_reason: row.try_get(22)?,
        completed_at: row.try_get(23)?,
        created_at: row.try_get(24)?,
        updated_at: row.try_get(25)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The decoder reads fields by index in declaration order: the selected
    /// columns must be exactly the entity's, in that order.
    #[test]
    fn the_selected_columns_are_the_entitys_in_field_order() {
        let names: Vec<&str> = JOB_COLUMNS
            .split(", ")
            .map(|column| column.trim_start_matches("jobs."))
            .collect();
        assert_eq!(
            names,
            [
                "id",
                "organization_id",
                "key",
                "name",
                "url",
                "method",
                "headers",
                "body",
                "timeout_ms",
                "schedule_kind",
                "cron",
                "timezone",
                "run_at",
                "retry_max_attempts",
                "retry_min_backoff_ms",
                "retry_max_backoff_ms",
                "concurrency",
                "missed_runs",
                "catch_up_grace_ms",
                "enabled",
                "next_run_at",
                "consecutive_failures",
                "disabled_reason",
                "completed_at",
                "created_at",
                "updated_at",
            ]
        );
    }
}
