//! Small builders that keep the migrations readable and identical on both engines.

use sea_orm_migration::prelude::*;

pub fn name(name: &str) -> Alias {
    Alias::new(name)
}

pub fn uuid_pk(column: &str) -> ColumnDef {
    ColumnDef::new(name(column))
        .uuid()
        .not_null()
        .primary_key()
        .to_owned()
}

pub fn uuid(column: &str) -> ColumnDef {
    ColumnDef::new(name(column)).uuid().not_null().to_owned()
}

pub fn uuid_null(column: &str) -> ColumnDef {
    ColumnDef::new(name(column)).uuid().null().to_owned()
}

pub fn text(column: &str) -> ColumnDef {
    ColumnDef::new(name(column)).text().not_null().to_owned()
}

pub fn text_null(column: &str) -> ColumnDef {
    ColumnDef::new(name(column)).text().null().to_owned()
}

pub fn timestamp(column: &str) -> ColumnDef {
    ColumnDef::new(name(column))
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

pub fn timestamp_null(column: &str) -> ColumnDef {
    ColumnDef::new(name(column))
        .timestamp_with_time_zone()
        .null()
        .to_owned()
}

pub fn boolean(column: &str, default: bool) -> ColumnDef {
    ColumnDef::new(name(column))
        .boolean()
        .not_null()
        .default(default)
        .to_owned()
}

pub fn integer(column: &str, default: i32) -> ColumnDef {
    ColumnDef::new(name(column))
        .integer()
        .not_null()
        .default(default)
        .to_owned()
}

pub fn integer_null(column: &str) -> ColumnDef {
    ColumnDef::new(name(column)).integer().null().to_owned()
}

pub fn big_integer(column: &str) -> ColumnDef {
    ColumnDef::new(name(column))
        .big_integer()
        .not_null()
        .to_owned()
}

pub fn big_integer_null(column: &str) -> ColumnDef {
    ColumnDef::new(name(column)).big_integer().null().to_owned()
}

/// A foreign key from `table.column` to `target.id` that deletes with its parent.
pub fn cascade(table: &str, column: &str, target: &str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{table}_{column}"))
        .from(name(table), name(column))
        .to(name(target), name("id"))
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

pub fn index(table: &str, columns: &[&str]) -> IndexCreateStatement {
    let mut statement = Index::create();
    statement
        .name(format!("ix_{table}_{}", columns.join("_")))
        .table(name(table));
    for column in columns {
        statement.col(name(column));
    }
    statement.to_owned()
}

pub fn unique(table: &str, columns: &[&str]) -> IndexCreateStatement {
    let mut statement = index(table, columns);
    statement
        .name(format!("ux_{table}_{}", columns.join("_")))
        .unique();
    statement
}

/// Runs `sql` on PostgreSQL only: for settings and constraints SQLite has no
/// statement for.
pub async fn on_postgres(manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    if manager.get_database_backend() == sea_orm_migration::sea_orm::DatabaseBackend::Postgres {
        manager.get_connection().execute_unprepared(sql).await?;
    }
    Ok(())
}
