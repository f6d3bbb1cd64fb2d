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
}

/// `?limit=&cursor=`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct PageQuery {
    /// 1 to 200, default 50.
    pub limit: Option<u64>,
    /// Opaque cursor from a previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    /// The page size, validated.
    pub fn limit(&self) -> Result<u64, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
            Some(_) => Err(ApiError::invalid("limit", "between 1 and 200")),
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
