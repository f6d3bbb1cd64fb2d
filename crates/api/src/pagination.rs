//! Cursor pagination: `?limit=` (default 50, max 200) and `?cursor=`, answered as
//! `{"data": [...], "next_cursor": "..." | null}`.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;

/// The default page size.
pub const DEFAULT_LIMIT: u64 = 50;
/// The largest page size.
pub const MAX_LIMIT: u64 = 200;

/// A page of results.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    /// The items.
    pub data: Vec<T>,
    /// Pass as `cursor` for the next page; null on the last one.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A complete, single page.
    pub fn all(data: Vec<T>) -> Self {
        Self {
            data,
            next_cursor: None,
        }
    }

    /// One page of a list read whole (an organization's members, keys or
    /// invitations, a user's organizations: short lists), newest first by
    /// `id` (UUIDv7: creation order): the `query`'s limit of items after its
    /// cursor, which is the last id of the page before.
    pub fn of_list(
        mut items: Vec<T>,
        id: impl Fn(&T) -> uuid::Uuid,
        query: &PageQuery,
    ) -> Result<Self, ApiError> {
        let limit = usize::try_from(query.limit()?).unwrap_or(usize::MAX);
        let after = query.uuid_cursor()?;
        items.sort_by_key(|item| std::cmp::Reverse(id(item)));
        let mut data: Vec<T> = items
            .into_iter()
            .filter(|item| after.is_none_or(|after| id(item) < after))
            .collect();
        let next_cursor = if data.len() > limit {
            data.truncate(limit);
            data.last().map(|item| id(item).to_string())
        } else {
            None
        };
        Ok(Self { data, next_cursor })
    }
}

/// `?limit=&cursor=`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct PageQuery {
    /// 1 to 200, default 50. Read as text so that a bad value is a 422 naming
    /// `limit`, not a 400 about the query string.
    #[param(value_type = Option<u64>, minimum = 1, maximum = 200)]
    pub limit: Option<String>,
    /// Opaque cursor from a previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    /// The page size, validated.
    pub fn limit(&self) -> Result<u64, ApiError> {
        match self.limit.as_deref().map(str::parse::<u64>) {
            None => Ok(DEFAULT_LIMIT),
            Some(Ok(limit)) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
            Some(_) => Err(ApiError::invalid(
                "limit",
                "a whole number between 1 and 200",
            )),
        }
    }

    /// The cursor as a UUID (for lists ordered by id).
    pub fn uuid_cursor(&self) -> Result<Option<uuid::Uuid>, ApiError> {
        self.cursor
            .as_deref()
            .map(|c| {
                c.parse()
                    .map_err(|_| ApiError::invalid("cursor", "not a cursor from this list"))
            })
            .transpose()
    }
}
