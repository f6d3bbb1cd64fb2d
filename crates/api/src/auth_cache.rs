//! API keys recently authenticated on this node, with their organizations, kept
//! for a few seconds: a busy key costs two queries once per [`API_KEY_CACHE_TTL`]
//! instead of on every request.
//!
//! Revoking a key, or suspending, renaming, deleting or re-planning its
//! organization, forgets the cached entries on the node that made the change at
//! once; another node sees the change when its entry expires, within the TTL.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use punctual_persistence::entities::{api_key, organization};
use uuid::Uuid;

/// How long an authenticated key is trusted without reading it again.
pub const API_KEY_CACHE_TTL: Duration = Duration::from_secs(5);

/// Entries kept at most; past it the expired ones are dropped, then all.
const MAX_ENTRIES: usize = 10_000;

/// A key as read from the database, and its organization.
#[derive(Debug, Clone)]
pub struct CachedKey {
    /// The key row (its secret's hash included, never the secret).
    pub key: api_key::Model,
    /// Its organization.
    pub organization: organization::Model,
}

/// Recently authenticated API keys, by public id.
#[derive(Debug, Default)]
pub struct ApiKeyCache {
    entries: Mutex<HashMap<String, (Instant, CachedKey)>>,
}

impl ApiKeyCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The key with this public id, if read within the TTL.
    pub fn get(&self, public_id: &str) -> Option<CachedKey> {
        let entries = self.entries.lock().ok()?;
        let (at, cached) = entries.get(public_id)?;
        (at.elapsed() < API_KEY_CACHE_TTL).then(|| cached.clone())
    }

    /// Remembers a live key just read.
    pub fn put(&self, public_id: &str, cached: CachedKey) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (at, _)| at.elapsed() < API_KEY_CACHE_TTL);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(public_id.to_owned(), (Instant::now(), cached));
    }

    /// Notes that the key's `last_used_at` was written.
    pub fn touched(&self, public_id: &str, at: DateTime<Utc>) {
        if let Ok(mut entries) = self.entries.lock() {
            if let Some((_, cached)) = entries.get_mut(public_id) {
                cached.key.last_used_at = Some(at);
            }
        }
    }

    /// Forgets a key (revoked).
    pub fn forget_key(&self, key_id: Uuid) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, (_, cached)| cached.key.id != key_id);
        }
    }

    /// Forgets every key of an organization (suspended, renamed, deleted, plan changed).
    pub fn forget_organization(&self, organization_id: Uuid) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, (_, cached)| cached.organization.id != organization_id);
        }
    }
}
