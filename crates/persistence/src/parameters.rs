//! Raw statements' bound values, numbered as the backend wants them.

use sea_orm::{DatabaseBackend, Statement};
use uuid::Uuid;

/// Placeholders numbered as the backend wants them, with their values.
pub(crate) struct Parameters {
    backend: DatabaseBackend,
    values: Vec<sea_orm::Value>,
}

impl Parameters {
    pub(crate) fn new(backend: DatabaseBackend) -> Self {
        Self {
            backend,
            values: Vec::new(),
        }
    }

    pub(crate) fn bind(&mut self, value: impl Into<sea_orm::Value>) -> String {
        self.values.push(value.into());
        match self.backend {
            DatabaseBackend::Postgres => format!("${}", self.values.len()),
            _ => "?".to_owned(),
        }
    }

    pub(crate) fn list(&mut self, ids: &[Uuid]) -> String {
        ids.iter()
            .map(|id| self.bind(*id))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub(crate) fn statement(self, sql: String) -> Statement {
        Statement::from_sql_and_values(self.backend, sql, self.values)
    }
}
