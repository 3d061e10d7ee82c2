//! The aborted-transaction index (`.txnindex`) of a segment, in Kafka's format.
//!
//! One file per segment holding an ABORT marker, `<base offset>.txnindex`: a flat array of
//! 34-byte big-endian entries `int16 version (0) | int64 producerId | int64 firstOffset |
//! int64 lastOffset | int64 lastStableOffset` (Kafka's `AbortedTxn`/`TransactionIndex`).
//! `lastOffset` is the marker's offset and entries are in increasing `lastOffset`, each in the
//! segment holding its marker. `lastStableOffset` is the first offset of the earliest *other*
//! producer's transaction still open when the marker was written, else the marker's offset + 1:
//! a read_committed fetch stops collecting aborted transactions once it sees an entry whose
//! `lastStableOffset` reaches its upper bound.
//!
//! The file is derived data, like the offset and time indexes, and is kept through the same
//! `IndexFile` (in memory, appended to the file, rewritten whole after a rebuild). It is
//! **always rebuilt at open**, never trusted: Rill has no producer-state snapshots, so open
//! replays every batch (markers included) to rebuild the producer state anyway, and that
//! replay yields exactly the entries; trusting the file when the shutdown was clean would save
//! nothing and add a second source of truth. The file on disk is rewritten only when it
//! differs, and exists only for segments with entries (as in Kafka, which creates it lazily).
//!
//! After retention deleted older segments the replay starts at the first retained segment: a
//! transaction begun in a deleted segment reopens at its first retained batch, so a rebuilt
//! entry's firstOffset (and others' lastStableOffset) may be higher than the one first
//! written. Both describe the same data from the log start on, which is all a fetch can ask
//! for; a transaction whose data is all gone leaves no entry, and needs none.

use super::index::{IndexEntry, IndexFile};
use crate::types::{Offset, ProducerId};

/// Version written in each entry (Kafka's `AbortedTxn.CURRENT_VERSION`).
const ENTRY_VERSION: i16 = 0;

/// One aborted transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    /// The producer whose transaction was aborted.
    pub producer_id: ProducerId,
    /// Offset of its first batch in this partition.
    pub first_offset: Offset,
    /// Offset of the ABORT marker.
    pub last_offset: Offset,
    /// Kafka's lastStableOffset of the entry (see the module doc).
    pub last_stable_offset: Offset,
}

impl IndexEntry for AbortedTxn {
    const SIZE: usize = 34;
    fn encode(&self) -> Vec<u8> {
        [
            &ENTRY_VERSION.to_be_bytes()[..],
            &self.producer_id.0.to_be_bytes()[..],
            &self.first_offset.0.to_be_bytes()[..],
            &self.last_offset.0.to_be_bytes()[..],
            &self.last_stable_offset.0.to_be_bytes()[..],
        ]
        .concat()
    }
    fn decode(bytes: &[u8]) -> Option<Self> {
        let i64_at = |at: usize| -> Option<i64> {
            Some(i64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
        };
        let version = i16::from_be_bytes(bytes.get(0..2)?.try_into().ok()?);
        if version != ENTRY_VERSION || bytes.len() != Self::SIZE {
            return None;
        }
        Some(AbortedTxn {
            producer_id: ProducerId(i64_at(2)?),
            first_offset: Offset(i64_at(10)?),
            last_offset: Offset(i64_at(18)?),
            last_stable_offset: Offset(i64_at(26)?),
        })
    }
    fn may_precede(&self, next: &Self) -> bool {
        self.last_offset < next.last_offset
    }
}

/// A segment's `.txnindex`.
pub(crate) type TxnIndex = IndexFile<AbortedTxn>;

/// Appends to `out` the entries of `index` overlapping a fetch of `[fetch_offset, upper_bound)`
/// (`lastOffset >= fetch_offset && firstOffset < upper_bound`); returns true when the search is
/// complete, i.e. an entry's lastStableOffset reached `upper_bound` so no later segment can hold
/// an aborted transaction overlapping the range (Kafka's `TransactionIndex.collectAbortedTxns`).
pub(crate) fn collect(
    index: &TxnIndex,
    fetch_offset: Offset,
    upper_bound: Offset,
    out: &mut Vec<AbortedTxn>,
) -> bool {
    for e in index.entries() {
        if e.last_offset >= fetch_offset && e.first_offset < upper_bound {
            out.push(*e);
        }
        if e.last_stable_offset >= upper_bound {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pid: i64, first: i64, last: i64, lso: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id: ProducerId(pid),
            first_offset: Offset(first),
            last_offset: Offset(last),
            last_stable_offset: Offset(lso),
        }
    }

    #[test]
    fn golden_entry_bytes() {
        let e = entry(0x0102_0304_0506_0708, 5, 9, 10);
        let expected: Vec<u8> = [
            vec![0x00, 0x00],
            vec![0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08],
            vec![0, 0, 0, 0, 0, 0, 0, 5],
            vec![0, 0, 0, 0, 0, 0, 0, 9],
            vec![0, 0, 0, 0, 0, 0, 0, 10],
        ]
        .concat();
        assert_eq!(expected.len(), 34);
        assert_eq!(e.encode(), expected);
        assert_eq!(AbortedTxn::decode(&expected), Some(e));
        let mut wrong_version = expected.clone();
        wrong_version[1] = 1;
        assert_eq!(AbortedTxn::decode(&wrong_version), None);
        assert_eq!(AbortedTxn::decode(&expected[..33]), None);
        assert_eq!(AbortedTxn::decode(&[]), None);
    }

    #[test]
    fn collect_uses_kafkas_overlap_and_completion_rules() {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        };
        let mut index = TxnIndex::unpersisted(
            dir.path().join("x.txnindex"),
            vec![entry(1, 0, 4, 3), entry(2, 3, 8, 9), entry(3, 10, 12, 20)],
            &crate::log::files::FileCache::new(16),
        );
        let mut out = Vec::new();
        assert!(collect(&index, Offset(5), Offset(9), &mut out));
        assert_eq!(out, vec![entry(2, 3, 8, 9)], "first ends before the fetch");
        out.clear();
        assert!(!collect(&index, Offset(0), Offset(30), &mut out));
        assert_eq!(
            out.len(),
            3,
            "none reaches 30: the next segment must be looked at"
        );
        assert!(index.truncate_from(|e| e.last_offset >= Offset(8)).is_ok());
        assert_eq!(index.entries(), &[entry(1, 0, 4, 3)]);
    }
}
