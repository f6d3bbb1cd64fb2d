//! Raw statements' bound values, numbered as the backend wants them.

use std::fmt::{self, Write as _};

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseBackend, Statement, Value};
use uuid::Uuid;

/// A bound value's placeholder (`$n`, or `?n` on SQLite), written straight into
/// the statement's text: a multi-row statement binds thousands, and a `String`
/// for each was a measurable share of the engine's work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placeholder {
    sigil: char,
    number: usize,
}

impl Placeholder {
    /// Appends the placeholder to `sql` without `core::fmt`, whose machinery
    /// cost more than the digits themselves in the engine's multi-row statements.
    pub(crate) fn push_to(self, sql: &mut String) {
        sql.push(self.sigil);
        sql.push_str(itoa::Buffer::new().format(self.number));
    }
}

impl fmt::Display for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char(self.sigil)?;
        f.write_str(itoa::Buffer::new().format(self.number))
    }
}

/// Appends a row of placeholders, `(a, b, …)`, to `sql`.
pub(crate) fn push_row(sql: &mut String, row: &[Placeholder]) {
    sql.push('(');
    for (i, placeholder) in row.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        placeholder.push_to(sql);
    }
    sql.push(')');
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
    /// values of few distinct kinds; compared as they are, so a repeat costs no
    /// allocation.
    pub(crate) fn bind_shared<T: Shared + ?Sized>(&mut self, value: &T) -> Placeholder {
        if let Some((_, placeholder)) = self
            .shared
            .iter()
            .find(|(bound, _)| value.is_bound_as(bound))
        {
            return *placeholder;
        }
        let value = value.to_value();
        let placeholder = self.bind(value.clone());
        self.shared.push((value, placeholder));
        placeholder
    }

    pub(crate) fn list(&mut self, ids: &[Uuid]) -> String {
        let mut list = String::with_capacity(ids.len() * 6);
        for (i, id) in ids.iter().enumerate() {
            if i > 0 {
                list.push_str(", ");
            }
            self.bind(*id).push_to(&mut list);
        }
        list
    }

    pub(crate) fn statement(self, sql: String) -> Statement {
        Statement::from_sql_and_values(self.backend, sql, self.values)
    }
}

/// A value [`Parameters::bind_shared`] compares with the values bound before
/// without converting it first: converting a string or a time allocates.
pub(crate) trait Shared {
    /// Whether `bound` is this value as [`Shared::to_value`] would bind it.
    fn is_bound_as(&self, bound: &Value) -> bool;
    /// The value to bind.
    fn to_value(&self) -> Value;
}

impl Shared for str {
    fn is_bound_as(&self, bound: &Value) -> bool {
        matches!(bound, Value::String(Some(b)) if b.as_str() == self)
    }
    fn to_value(&self) -> Value {
        Value::from(self)
    }
}

impl Shared for String {
    fn is_bound_as(&self, bound: &Value) -> bool {
        self.as_str().is_bound_as(bound)
    }
    fn to_value(&self) -> Value {
        Value::from(self.as_str())
    }
}

impl Shared for i32 {
    fn is_bound_as(&self, bound: &Value) -> bool {
        matches!(bound, Value::Int(Some(b)) if b == self)
    }
    fn to_value(&self) -> Value {
        Value::from(*self)
    }
}

impl Shared for DateTime<Utc> {
    fn is_bound_as(&self, bound: &Value) -> bool {
        matches!(bound, Value::ChronoDateTimeUtc(Some(b)) if **b == *self)
    }
    fn to_value(&self) -> Value {
        Value::from(*self)
    }
}

/// NULL is bound typed (`Value::String(None)`, …), as `Option`'s conversion does.
impl<T> Shared for Option<T>
where
    T: Shared + sea_orm::sea_query::Nullable,
{
    fn is_bound_as(&self, bound: &Value) -> bool {
        match self {
            Some(value) => value.is_bound_as(bound),
            None => *bound == T::null(),
        }
    }
    fn to_value(&self) -> Value {
        match self {
            Some(value) => value.to_value(),
            None => T::null(),
        }
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

    /// Each kind binds what `bind` would, and recognises exactly itself.
    #[test]
    fn shared_values_bind_as_bind_does_and_match_only_themselves() {
        fn check<T: Shared + Clone + Into<Value>>(value: &T, other: &T) {
            let bound = value.to_value();
            assert_eq!(bound, value.clone().into());
            assert!(value.is_bound_as(&bound));
            assert!(!other.is_bound_as(&bound));
            assert!(!value.is_bound_as(&other.to_value()));
        }
        let now = Utc::now();
        check(&"running".to_owned(), &"pending".to_owned());
        check(&7_i32, &8_i32);
        check(&now, &(now + chrono::Duration::microseconds(1)));
        check(&Some("a".to_owned()), &None);
        check(&Some(7_i32), &None);
        check(&Some(now), &None);
        check(&None::<String>, &Some(String::new()));
        // A NULL of one type is not a NULL of another.
        assert!(!None::<i32>.is_bound_as(&None::<String>.to_value()));
        assert!("x".is_bound_as(&"x".to_value()) && !"x".is_bound_as(&"y".to_value()));
    }

    #[test]
    fn rows_are_written_as_display_writes_their_placeholders() {
        let mut p = Parameters::new(DatabaseBackend::Postgres);
        let row: Vec<Placeholder> = (0..12).map(|n| p.bind(n)).collect();
        let mut sql = String::from("VALUES ");
        push_row(&mut sql, &row);
        push_row(&mut sql, &row[10..]);
        assert_eq!(
            sql,
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)($11, $12)"
        );
        let displayed: Vec<String> = row.iter().map(ToString::to_string).collect();
        assert!(sql.starts_with(&format!("VALUES ({})", displayed.join(", "))));
    }

    #[test]
    fn an_empty_list_binds_nothing() {
        let mut p = Parameters::new(DatabaseBackend::Postgres);
        assert_eq!(p.list(&[]), "");
        assert_eq!(p.bind(1_i64).to_string(), "$1");
    }
}
