//! Raw statements' bound values, numbered as the backend wants them.

use sea_orm::{DatabaseBackend, Statement};
use uuid::Uuid;

/// Placeholders numbered as the backend wants them (`$n`, or `?n` on SQLite, so
/// that one value may appear several times), with their values.
pub(crate) struct Parameters {
    backend: DatabaseBackend,
    values: Vec<sea_orm::Value>,
    /// Values bound through [`Parameters::bind_shared`], with their placeholders.
    shared: Vec<(sea_orm::Value, String)>,
}

impl Parameters {
    pub(crate) fn new(backend: DatabaseBackend) -> Self {
        Self {
            backend,
            values: Vec::new(),
            shared: Vec::new(),
        }
    }

    pub(crate) fn bind(&mut self, value: impl Into<sea_orm::Value>) -> String {
        self.values.push(value.into());
        match self.backend {
            DatabaseBackend::Postgres => format!("${}", self.values.len()),
            _ => format!("?{}", self.values.len()),
        }
    }

    /// Like [`Parameters::bind`], but an equal value bound this way before gets
    /// its placeholder again: for the few values a multi-row statement repeats
    /// on every row (a lease, a node, a time). Looked up linearly, so only for
    /// values of few distinct kinds.
    pub(crate) fn bind_shared(&mut self, value: impl Into<sea_orm::Value>) -> String {
        let value = value.into();
        if let Some((_, placeholder)) = self.shared.iter().find(|(bound, _)| *bound == value) {
            return placeholder.clone();
        }
        let placeholder = self.bind(value.clone());
        self.shared.push((value, placeholder.clone()));
        placeholder
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
