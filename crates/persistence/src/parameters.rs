//! Raw statements' bound values, numbered as the backend wants them.

use std::fmt::{self, Write as _};

use sea_orm::{DatabaseBackend, Statement};
use uuid::Uuid;

/// A bound value's placeholder (`$n`, or `?n` on SQLite), written straight into
/// the statement's text: a multi-row statement binds thousands, and a `String`
/// for each was a measurable share of the engine's work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placeholder {
    sigil: char,
    number: usize,
}

impl fmt::Display for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char(self.sigil)?;
        fmt::Display::fmt(&self.number, f)
    }
}

/// Placeholders numbered as the backend wants them (`$n`, or `?n` on SQLite, so
/// that one value may appear several times), with their values.
pub(crate) struct Parameters {
    backend: DatabaseBackend,
    values: Vec<sea_orm::Value>,
    /// Values bound through [`Parameters::bind_shared`], with their placeholders.
    shared: Vec<(sea_orm::Value, Placeholder)>,
}

impl Parameters {
    pub(crate) fn new(backend: DatabaseBackend) -> Self {
        Self {
            backend,
            values: Vec::new(),
            shared: Vec::new(),
        }
    }

    pub(crate) fn bind(&mut self, value: impl Into<sea_orm::Value>) -> Placeholder {
        self.values.push(value.into());
        Placeholder {
            sigil: match self.backend {
                DatabaseBackend::Postgres => '$',
                _ => '?',
            },
            number: self.values.len(),
        }
    }

    /// Like [`Parameters::bind`], but an equal value bound this way before gets
    /// its placeholder again: for the few values a multi-row statement repeats
    /// on every row (a lease, a node, a time). Looked up linearly, so only for
    /// values of few distinct kinds.
    pub(crate) fn bind_shared(&mut self, value: impl Into<sea_orm::Value>) -> Placeholder {
        let value = value.into();
        if let Some((_, placeholder)) = self.shared.iter().find(|(bound, _)| *bound == value) {
            return *placeholder;
        }
        let placeholder = self.bind(value.clone());
        self.shared.push((value, placeholder));
        placeholder
    }

    pub(crate) fn list(&mut self, ids: &[Uuid]) -> String {
        let mut list = String::with_capacity(ids.len() * 6);
        for (i, id) in ids.iter().enumerate() {
            let separator = if i == 0 { "" } else { ", " };
            let placeholder = self.bind(*id);
            // Writing to a String cannot fail.
            let _ = write!(list, "{separator}{placeholder}");
        }
        list
    }

    pub(crate) fn statement(self, sql: String) -> Statement {
        Statement::from_sql_and_values(self.backend, sql, self.values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_per_backend_and_shared_values_reuse_theirs() {
        let ids = [Uuid::nil(), Uuid::max()];
        for (backend, sigil) in [
            (DatabaseBackend::Postgres, "$"),
            (DatabaseBackend::Sqlite, "?"),
        ] {
            let mut p = Parameters::new(backend);
            let first = p.bind(7_i32);
            let node = p.bind_shared("node-a");
            let again = p.bind_shared("node-a");
            let other = p.bind_shared("node-b");
            let list = p.list(&ids);
            let sql = format!("{first} {node} {again} {other} ({list})");
            assert_eq!(sql, format!("{s}1 {s}2 {s}2 {s}3 ({s}4, {s}5)", s = sigil));
            assert_eq!(p.statement(sql).values.map(|v| v.0.len()), Some(5));
        }
    }

    #[test]
    fn an_empty_list_binds_nothing() {
        let mut p = Parameters::new(DatabaseBackend::Postgres);
        assert_eq!(p.list(&[]), "");
        assert_eq!(p.bind(1_i64).to_string(), "$1");
    }
}
