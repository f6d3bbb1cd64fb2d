//! Statements built once per backend. sea-query renders a statement's SQL on
//! every call; for the hottest reads (one job by id: a join with a correlated
//! subquery) that rendering was a sixth of a GET's CPU in `punctual serve`.
//! A [`Prepared`] renders its statement once per backend with placeholder
//! arguments and afterwards only binds the caller's values into the cached SQL.

use std::sync::OnceLock;

use sea_orm::{DatabaseBackend, Statement, Value};
use uuid::Uuid;

/// Where each bound value of the cached statement comes from.
#[derive(Debug)]
enum Slot {
    /// The caller's argument at this index.
    Argument(usize),
    /// A constant of the statement itself (a LIMIT, a literal).
    Constant(Value),
}

#[derive(Debug)]
struct Template {
    sql: String,
    slots: Vec<Slot>,
}

/// A statement over `N` UUID arguments whose shape does not depend on their
/// values, rendered at most once per backend.
#[derive(Debug)]
pub(crate) struct Prepared<const N: usize> {
    postgres: OnceLock<Option<Template>>,
    sqlite: OnceLock<Option<Template>>,
}

impl<const N: usize> Prepared<N> {
    pub(crate) const fn new() -> Self {
        Self {
            postgres: OnceLock::new(),
            sqlite: OnceLock::new(),
        }
    }

    /// The statement `build` makes for `arguments`, from the cache when it
    /// could be made. `build` must use each argument only as a bound value; if
    /// the placeholder rendering shows otherwise (an argument missing from the
    /// values, or colliding with a constant), nothing is cached and every call
    /// builds afresh, so the result is always what `build` itself would give.
    pub(crate) fn statement(
        &self,
        backend: DatabaseBackend,
        arguments: [Uuid; N],
        build: impl Fn(DatabaseBackend, [Uuid; N]) -> Statement,
    ) -> Statement {
        let slot = match backend {
            DatabaseBackend::Postgres => &self.postgres,
            _ => &self.sqlite,
        };
        let template = slot.get_or_init(|| template::<N>(build(backend, placeholders::<N>())));
        let Some(template) = template else {
            return build(backend, arguments);
        };
        let values = template
            .slots
            .iter()
            .map(|slot| match slot {
                Slot::Argument(index) => Value::from(arguments[*index]),
                Slot::Constant(value) => value.clone(),
            })
            .collect::<Vec<_>>();
        Statement::from_sql_and_values(backend, template.sql.clone(), values)
    }
}

/// Arguments no real row has (UUIDs of version 0 with a marker), so a bound
/// value equal to one of them is that argument.
fn placeholders<const N: usize>() -> [Uuid; N] {
    std::array::from_fn(|index| {
        Uuid::from_u128(0x7075_6e63_7475_616c_0000_0000_0000_0000 | index as u128)
    })
}

fn template<const N: usize>(statement: Statement) -> Option<Template> {
    let placeholders = placeholders::<N>();
    let mut used = [false; N];
    let mut slots = Vec::new();
    for value in statement.values.map(|values| values.0).unwrap_or_default() {
        let argument = placeholders
            .iter()
            .position(|placeholder| value == Value::from(*placeholder));
        match argument {
            Some(index) => {
                used[index] = true;
                slots.push(Slot::Argument(index));
            }
            None => slots.push(Slot::Constant(value)),
        }
    }
    used.iter().all(|u| *u).then_some(Template {
        sql: statement.sql,
        slots,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use sea_orm::sea_query::{Expr, Query};

    use super::*;

    fn by_two_ids(backend: DatabaseBackend, [a, b]: [Uuid; 2]) -> Statement {
        let query = Query::select()
            .expr(Expr::val(1))
            .from(sea_orm::sea_query::Alias::new("t"))
            .and_where(Expr::col(sea_orm::sea_query::Alias::new("b")).eq(b))
            .and_where(Expr::col(sea_orm::sea_query::Alias::new("a")).eq(a))
            .limit(7)
            .to_owned();
        backend.build(&query)
    }

    #[test]
    fn binds_each_call_its_own_arguments_in_the_statement_order() {
        let prepared = Prepared::<2>::new();
        for _ in 0..3 {
            let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
            for backend in [DatabaseBackend::Postgres, DatabaseBackend::Sqlite] {
                let cached = prepared.statement(backend, [a, b], by_two_ids);
                let fresh = by_two_ids(backend, [a, b]);
                assert_eq!(cached.sql, fresh.sql);
                assert_eq!(cached.values, fresh.values);
            }
        }
        assert!(matches!(prepared.postgres.get(), Some(Some(_))), "cached");
        assert!(matches!(prepared.sqlite.get(), Some(Some(_))), "cached");
    }

    #[test]
    fn a_statement_that_drops_an_argument_is_built_afresh_every_time() {
        let prepared = Prepared::<2>::new();
        // The second argument decides the shape, not a bound value.
        let shaped = |backend: DatabaseBackend, [a, b]: [Uuid; 2]| {
            let mut query = Query::select();
            query
                .expr(Expr::val(1))
                .from(sea_orm::sea_query::Alias::new("t"))
                .and_where(Expr::col(sea_orm::sea_query::Alias::new("a")).eq(a));
            if b.is_nil() {
                query.limit(1);
            }
            backend.build(&query)
        };
        let a = Uuid::new_v4();
        let nil = prepared.statement(DatabaseBackend::Postgres, [a, Uuid::nil()], shaped);
        assert!(nil.sql.contains("LIMIT"));
        let other = prepared.statement(DatabaseBackend::Postgres, [a, Uuid::new_v4()], shaped);
        assert!(!other.sql.contains("LIMIT"));
        assert!(matches!(prepared.postgres.get(), Some(None)), "not cached");
    }
}
