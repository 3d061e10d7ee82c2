//! Kafka's throttled-replicas lists (`leader.replication.throttled.replicas`,
//! `follower.replication.throttled.replicas`): `partition:broker` pairs, or `*` alone for
//! every replica. Parsed once, where the value is validated or resolved, so the fetch path
//! asks a set instead of re-reading a string per partition per fetch.

use std::collections::BTreeSet;

use crate::types::BrokerId;

/// A parsed throttled-replicas list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ReplicaList {
    /// Nothing is throttled (the empty default).
    #[default]
    None,
    /// `*`: every replica.
    All,
    /// `partition:broker` pairs.
    Pairs(BTreeSet<(i32, BrokerId)>),
}

impl ReplicaList {
    /// Parses a value; the error says which item is wrong.
    pub fn parse(value: &str) -> Result<ReplicaList, String> {
        // Kafka's list syntax (as `defs::split_list`): comma-separated, blanks ignored.
        let items: Vec<&str> = value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if items.is_empty() {
            return Ok(ReplicaList::None);
        }
        if items == ["*"] {
            return Ok(ReplicaList::All);
        }
        let mut pairs = BTreeSet::new();
        for item in items {
            let pair = item.split_once(':').and_then(|(p, b)| {
                Some((
                    i32::try_from(p.trim().parse::<u32>().ok()?).ok()?,
                    BrokerId(i32::try_from(b.trim().parse::<u32>().ok()?).ok()?),
                ))
            });
            match pair {
                Some(pair) => {
                    pairs.insert(pair);
                }
                None => {
                    return Err(format!(
                        "'{item}' is not a partitionId:brokerId pair (or the wildcard '*' alone)"
                    ))
                }
            }
        }
        Ok(ReplicaList::Pairs(pairs))
    }

    /// Whether the list names `broker`'s replica of `partition`.
    pub fn contains(&self, partition: i32, broker: BrokerId) -> bool {
        match self {
            ReplicaList::None => false,
            ReplicaList::All => true,
            ReplicaList::Pairs(p) => p.contains(&(partition, broker)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_ask() {
        assert_eq!(ReplicaList::parse("").unwrap(), ReplicaList::None);
        assert_eq!(ReplicaList::parse(" * ").unwrap(), ReplicaList::All);
        let l = ReplicaList::parse("0:1, 2:3").unwrap();
        assert!(l.contains(0, BrokerId(1)) && l.contains(2, BrokerId(3)));
        assert!(!l.contains(0, BrokerId(3)));
        assert!(ReplicaList::All.contains(7, BrokerId(9)));
        assert!(!ReplicaList::None.contains(0, BrokerId(0)));
        for bad in ["*,0:1", "0", "0-1", "a:1", "0:-1", "-1:2"] {
            assert!(ReplicaList::parse(bad).is_err(), "{bad}");
        }
    }
}
