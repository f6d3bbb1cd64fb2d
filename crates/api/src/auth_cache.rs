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
#[derive(Clone)]
pub struct CachedKey {
    /// The key row (its secret's hash included, never the secret).
    pub key: api_key::Model,
    /// Its organization.
    pub organization: organization::Model,
}

/// Names the key and its organization; the row's secret hash stays out of
/// logs.
impl std::fmt::Debug for CachedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedKey")
            .field("key_id", &self.key.id)
            .field("organization_id", &self.organization.id)
            .finish_non_exhaustive()
    }
}

/// Recently authenticated API keys, by public id.
#[derive(Debug, Default)]
pub struct ApiKeyCache {
    entries: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    by_public_id: HashMap<String, (Instant, CachedKey)>,
    /// When something was last forgotten: a key read before then may be what
    /// was forgotten, and is not put back.
    forgotten_at: Option<Instant>,
}

impl ApiKeyCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The key with this public id, if read within the TTL.
    pub fn get(&self, public_id: &str) -> Option<CachedKey> {
        let entries = self.entries.lock().ok()?;
        let (at, cached) = entries.by_public_id.get(public_id)?;
        (at.elapsed() < API_KEY_CACHE_TTL).then(|| cached.clone())
    }

    /// Remembers a live key read from the database from `read_at` on, unless a
    /// key or an organization was forgotten since: the read may have raced a
    /// revocation or a suspension that had not committed yet, and putting it
    /// back would undo the forgetting for the whole TTL.
    pub fn put(&self, public_id: &str, cached: CachedKey, read_at: Instant) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries
            .forgotten_at
            .is_some_and(|forgotten| forgotten >= read_at)
        {
            return;
        }
        let keys = &mut entries.by_public_id;
        if keys.len() >= MAX_ENTRIES {
            keys.retain(|_, (at, _)| at.elapsed() < API_KEY_CACHE_TTL);
            if keys.len() >= MAX_ENTRIES {
                keys.clear();
            }
        }
        keys.insert(public_id.to_owned(), (Instant::now(), cached));
    }

    /// Notes that the key's `last_used_at` was written.
    pub fn touched(&self, public_id: &str, at: DateTime<Utc>) {
        if let Ok(mut entries) = self.entries.lock() {
            if let Some((_, cached)) = entries.by_public_id.get_mut(public_id) {
                cached.key.last_used_at = Some(at);
            }
        }
    }

    /// Forgets a key (revoked).
    pub fn forget_key(&self, key_id: Uuid) {
        self.forget(|cached| cached.key.id == key_id);
    }

    /// Forgets every key of an organization (suspended, renamed, deleted, plan changed).
    pub fn forget_organization(&self, organization_id: Uuid) {
        self.forget(|cached| cached.organization.id == organization_id);
    }

    fn forget(&self, forgotten: impl Fn(&CachedKey) -> bool) {
        if let Ok(mut entries) = self.entries.lock() {
            entries
                .by_public_id
                .retain(|_, (_, cached)| !forgotten(cached));
            entries.forgotten_at = Some(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(organization_id: Uuid) -> CachedKey {
        let now = Utc::now();
        CachedKey {
            key: api_key::Model {
                id: Uuid::now_v7(),
                organization_id,
                public_id: "pub".to_owned(),
                secret_hash: "hash".to_owned(),
                name: "ci".to_owned(),
                role: "admin".to_owned(),
                created_by: None,
                created_at: now,
                last_used_at: None,
                revoked_at: None,
            },
            organization: organization::Model {
                id: organization_id,
                slug: "acme".to_owned(),
                name: "Acme".to_owned(),
                plan: "free".to_owned(),
                suspended_at: None,
                job_count: 0,
                created_at: now,
                updated_at: now,
            },
        }
    }

    /// A key read while its revocation (or its organization's suspension)
    /// committed is not put back after the forgetting; one read afterwards is.
    #[test]
    fn a_read_that_began_before_a_forget_is_not_put_back() {
        let cache = ApiKeyCache::new();
        let organization_id = Uuid::now_v7();
        let cached = key(organization_id);
        for forget in [
            Box::new(|cache: &ApiKeyCache, cached: &CachedKey| cache.forget_key(cached.key.id))
                as Box<dyn Fn(&ApiKeyCache, &CachedKey)>,
            Box::new(|cache: &ApiKeyCache, cached: &CachedKey| {
                cache.forget_organization(cached.organization.id)
            }),
        ] {
            let read_at = Instant::now();
            forget(&cache, &cached);
            cache.put("pub", cached.clone(), read_at);
            assert!(cache.get("pub").is_none());
            cache.put("pub", cached.clone(), Instant::now());
            assert!(cache.get("pub").is_some());
        }
    }
}
