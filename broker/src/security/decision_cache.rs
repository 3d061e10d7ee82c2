//! Remembered ACL decisions, so the produce and fetch paths do not walk the ACL index for
//! the same (principal, host, operation, resource) on every request.
//!
//! Why it is safe: a cache belongs to one [`AclIndex`](crate::metadata::acl::AclIndex), and
//! the authorizer makes a new index (and with it an empty cache) whenever the image's ACL
//! set changes, so a decision can never outlive the ACLs it was made from. `super.users` and
//! `allow.everyone.if.no.acl.found` are static for the node's life.
//!
//! Why this shape: entries are keyed by a 64-bit SipHash of the whole question and hold the
//! question itself, so a hit is one hash, one lock of one of [`SHARDS`] shards and a
//! comparison (a collision is a miss, never a wrong answer). Each shard holds at most
//! [`MAX_ENTRIES_PER_SHARD`] entries and is emptied when full: the bound is what matters
//! (names come from clients), and a hot working set refills at once.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Mutex;

use crate::metadata::acl::{AclOperation, ResourceType};

/// Shards of the cache (a power of two): requests on different connections rarely contend.
pub const SHARDS: usize = 16;
/// Entries per shard before it is emptied (16 × 1024 = 16,384 decisions in all: at most
/// about 13 MB with every string at [`MAX_CACHED_LEN`], well under 2 MB for usual names).
/// Emptying costs a shard's frees once per 1024 new decisions, cheap per decision even when
/// more topics than this are asked about in turn.
pub const MAX_ENTRIES_PER_SHARD: usize = 1024;
/// Longest resource name, principal or host remembered (topic names have at most 249
/// characters); longer questions are answered without the cache.
pub const MAX_CACHED_LEN: usize = 255;

/// One remembered question and its answer.
struct Entry {
    principal: Box<str>,
    host: Box<str>,
    name: Box<str>,
    op: AclOperation,
    rt: ResourceType,
    allowed: bool,
}

/// One decision asked of the cache.
#[derive(Clone, Copy)]
pub struct Question<'a> {
    /// `User:alice`.
    pub principal: &'a str,
    /// The client's host, as ACLs name hosts.
    pub host: &'a str,
    /// The operation.
    pub op: AclOperation,
    /// The resource type.
    pub rt: ResourceType,
    /// The resource name.
    pub name: &'a str,
}

impl Question<'_> {
    fn cacheable(&self) -> bool {
        self.principal.len() <= MAX_CACHED_LEN
            && self.host.len() <= MAX_CACHED_LEN
            && self.name.len() <= MAX_CACHED_LEN
    }
}

impl Entry {
    fn answers(&self, q: &Question<'_>) -> bool {
        self.op == q.op
            && self.rt == q.rt
            && *self.name == *q.name
            && *self.principal == *q.principal
            && *self.host == *q.host
    }
}

/// The decisions of one ACL index.
pub struct DecisionCache {
    shards: Vec<Mutex<HashMap<u64, Entry>>>,
    hasher: RandomState,
}

impl Default for DecisionCache {
    fn default() -> Self {
        DecisionCache {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
        }
    }
}

impl DecisionCache {
    fn hash(&self, q: &Question<'_>) -> u64 {
        let mut h = self.hasher.build_hasher();
        q.principal.hash(&mut h);
        q.host.hash(&mut h);
        q.name.hash(&mut h);
        q.op.hash(&mut h);
        q.rt.hash(&mut h);
        h.finish()
    }

    fn shard(&self, hash: u64) -> &Mutex<HashMap<u64, Entry>> {
        // SHARDS is a power of two: the low bits pick the shard.
        &self.shards[(hash as usize) & (SHARDS - 1)]
    }

    /// The remembered answer to `q`, or `decide()`'s, remembered.
    pub fn get_or_decide(&self, q: Question<'_>, decide: impl FnOnce() -> bool) -> bool {
        if !q.cacheable() {
            return decide();
        }
        let hash = self.hash(&q);
        let shard = self.shard(hash);
        if let Some(hit) = shard
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&hash)
            .filter(|e| e.answers(&q))
        {
            return hit.allowed;
        }
        // Decided outside the lock: a decision walks the index, and other requests may want
        // the shard meanwhile.
        let allowed = decide();
        let mut map = shard.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_ENTRIES_PER_SHARD {
            map.clear();
        }
        map.insert(
            hash,
            Entry {
                principal: q.principal.into(),
                host: q.host.into(),
                name: q.name.into(),
                op: q.op,
                rt: q.rt,
                allowed,
            },
        );
        debug_assert!(map.len() <= MAX_ENTRIES_PER_SHARD);
        allowed
    }

    /// Decisions remembered now (for tests and metrics).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q<'a>(principal: &'a str, name: &'a str) -> Question<'a> {
        Question {
            principal,
            host: "10.0.0.1",
            op: AclOperation::Write,
            rt: ResourceType::Topic,
            name,
        }
    }

    #[test]
    fn remembers_each_question_apart() {
        let c = DecisionCache::default();
        let mut asked = 0;
        assert!(c.get_or_decide(q("User:a", "t"), || {
            asked += 1;
            true
        }));
        assert!(c.get_or_decide(q("User:a", "t"), || {
            asked += 1;
            false
        }));
        assert_eq!(asked, 1, "the second answer came from the cache");
        // Any part of the question differing is another question.
        assert!(!c.get_or_decide(q("User:b", "t"), || false));
        assert!(!c.get_or_decide(q("User:a", "u"), || false));
        let mut read = q("User:a", "t");
        read.op = AclOperation::Read;
        assert!(!c.get_or_decide(read, || false));
        assert_eq!(c.len(), 4);
    }

    #[test]
    fn stays_bounded_and_skips_long_names() {
        let c = DecisionCache::default();
        for i in 0..(SHARDS * MAX_ENTRIES_PER_SHARD * 2) {
            let name = format!("topic-{i}");
            c.get_or_decide(q("User:a", &name), || true);
        }
        assert!(c.len() <= SHARDS * MAX_ENTRIES_PER_SHARD, "{}", c.len());
        let long = "x".repeat(MAX_CACHED_LEN + 1);
        let before = c.len();
        let mut asked = 0;
        for _ in 0..2 {
            c.get_or_decide(q("User:a", &long), || {
                asked += 1;
                true
            });
        }
        assert_eq!(
            (asked, c.len()),
            (2, before),
            "long names are not remembered"
        );
    }
}
