//! Log compaction (Kafka's log cleaner) for topics whose `cleanup.policy` contains `compact`:
//! the closed segments keep only the latest record of each key.
//!
//! One pass (`PartitionLog::compact`):
//!
//! 1. The cleanable range is the closed segments (never the active one) up to the first dirty
//!    segment holding a record newer than `min.compaction.lag.ms` and the segment holding the
//!    first unstable offset (Kafka's "first uncleanable offset", at segment granularity).
//! 2. The pass runs only when the dirty bytes (segments holding offsets at or past the cleaner
//!    checkpoint, `cleaner-offset-checkpoint` in the partition directory) are at least
//!    `min.cleanable.dirty.ratio` of the range's bytes.
//! 3. A map key bytes → offset of the key's latest record is built over the whole range.
//! 4. Each segment of the range is rewritten keeping a record only if it is the latest of its
//!    key; a latest record that is a tombstone (null value) goes too once its batch's
//!    maxTimestamp is older than `delete.retention.ms`. Offsets never change: readers see gaps.
//! 5. The checkpoint moves to the end of the range.
//!
//! Transactions follow Kafka's cleaner rules:
//!
//! - The range never reaches an open transaction: it ends before the segment holding the log's
//!   first unstable offset, so every transactional batch in it belongs to a decided
//!   transaction (its marker may lie past the range).
//! - Records of aborted transactions (a producer's batches inside an aborted range of the
//!   `.txnindex`) add nothing to the map and are removed; records of committed transactions
//!   compete by key like any other.
//! - A marker stays while any batch of the transaction it ends is still in the log, so a
//!   rebuild never sees transaction data without its end (which would hold the last stable
//!   offset forever). Once its transaction's data is gone it is removed when its timestamp is
//!   older than `delete.retention.ms`, the tombstones' rule (Kafka counts that time from the
//!   pass that first found the marker removable; a consumer that read the data is given the
//!   same grace either way).
//! - After a pass that removed transactional data or markers, every segment's `.txnindex` is
//!   rebuilt by the same replay open does, so the index and a later open always agree.
//!
//! Kept as they are, byte for byte: the last five batches (`CACHED_BATCHES`) of every producer
//! and its last marker, so the producer state rebuilt from the log at the next open (sequences,
//! producer epoch, coordinator epoch) matches the in-memory one (Kafka instead keeps the
//! headers of emptied batches and producer-state snapshots). Records without a key are kept
//! (Kafka drops them; such records can only predate the topic becoming compacted). A batch
//! that cannot be decoded is kept and contributes no keys.
//!
//! Rewritten batches are re-encoded with `kafka-protocol`'s encoder in the batch's codec, with
//! each kept record's offset, timestamp, key, value and headers, the batch's producer id and
//! epoch, partition leader epoch, delete-horizon and LogAppendTime attributes. The new batch's
//! base offset is its first kept record's offset and its base sequence that record's sequence
//! (Kafka keeps the original base offset and sequence range instead).
//!
//! A rewritten segment goes to `<base>.log.cleaned`, is fsynced, checked and renamed over the
//! `.log` (see `Segment::swap_in_cleaned`); open deletes a leftover `.cleaned` file, so a crash
//! leaves either the old or the new segment. A closed segment left empty is deleted, except the
//! first one, which carries the log start. Segments are not merged.
//!
//! Simplifications against Kafka, all on the safe side: tombstones expire by their batch's
//! timestamp rather than by the time they spent in a cleaned segment; the map holds whole keys
//! (Kafka: 16-byte hashes, bounded memory); the pass holds the log for its whole duration.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::File;
use std::io::{BufWriter, Write};

use bytes::BytesMut;
use kafka_protocol::records::{Record, RecordBatchEncoder, RecordEncodeOptions};

use super::batch::{self, BatchHeader, BatchRef, CRC_START};
use super::checkpoint;
use super::control;
use super::error::{LogError, RecordRule, RejectedRecords};
use super::producer_state::CACHED_BATCHES;
use super::segment::Segment;
use super::PartitionLog;

/// File name of the partition's cleaner checkpoint: the first offset not yet cleaned (Kafka keeps
/// one such file per log dir, with a line per partition).
pub const CLEANER_CHECKPOINT: &str = "cleaner-offset-checkpoint";

/// Buffer size for walking segments during a clean.
const CHUNK: usize = 1 << 20;

/// Attribute bit 3: the batch carries LogAppendTime.
const ATTR_LOG_APPEND_TIME: i16 = 0x08;

/// What a compaction pass did; all zero when it did not run or changed nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanStats {
    /// Segments rewritten or, left empty, deleted.
    pub segments_cleaned: usize,
    /// Size of those segments before the pass.
    pub bytes_before: u64,
    /// Their size after it (0 for a deleted one).
    pub bytes_after: u64,
    /// Records removed: superseded values, expired tombstones, records of aborted
    /// transactions and markers.
    pub records_removed: u64,
}

/// What the pass does with one stored batch.
enum Decision {
    /// Copy it unchanged.
    Keep,
    /// Remove it: none of its `removed` records is kept.
    Drop { removed: u64 },
    /// Replace it with `bytes`, a batch of the records kept.
    Rewrite { bytes: Vec<u8>, removed: u64 },
}

/// What cleaning one segment produced.
enum Outcome {
    /// Nothing to remove; no file written.
    Unchanged,
    /// `cleaned_path()` holds the replacement, `size` bytes (0: nothing left).
    Cleaned { size: u64, removed: u64 },
}

/// What every batch decision needs.
struct Context {
    /// Key → offset of its latest record in the cleanable range.
    latest: HashMap<Box<[u8]>, i64>,
    /// Base offsets of batches that must stay byte for byte (producer state).
    protected: HashSet<i64>,
    /// Tombstones and markers in batches with a maxTimestamp below this are removed.
    tombstone_horizon: i64,
    /// The log's aborted transactions.
    aborted: AbortedRanges,
}

/// The aborted transactions of the whole log (every segment's `.txnindex`), per producer:
/// `(first offset, marker offset)` in increasing order. As large as the indexes themselves.
struct AbortedRanges(HashMap<i64, Vec<(i64, i64)>>);

impl AbortedRanges {
    /// Whether `offset`, a batch of `producer_id`, lies in one of its aborted transactions.
    fn contains(&self, producer_id: i64, offset: i64) -> bool {
        let Some(ranges) = self.0.get(&producer_id) else {
            return false;
        };
        // The last range starting at or before `offset` is the only candidate.
        let i = ranges.partition_point(|&(first, _)| first <= offset);
        i > 0 && ranges.get(i - 1).is_some_and(|&(_, last)| offset <= last)
    }
}

/// What the pass learns as it walks the range in offset order.
#[derive(Default)]
struct PassState {
    /// Producers whose current transaction has a batch kept by this pass: the marker ending
    /// it must stay.
    retained: HashSet<i64>,
    /// Whether a transactional batch or a marker was removed or rewritten (the `.txnindex`
    /// files are then rebuilt).
    txn_changed: bool,
}

impl PartitionLog {
    /// One compaction pass over the closed segments (see the module docs). Does nothing unless
    /// `cleanup.policy` contains `compact` and the dirty ratio reaches
    /// `min.cleanable.dirty.ratio`. Offsets, the log start and the log end never change.
    pub fn compact(&mut self, now_ms: i64) -> Result<CleanStats, LogError> {
        if !self.config.cleanup_compact {
            return Ok(CleanStats::default());
        }
        let closed = self.segments.len().saturating_sub(1);
        let first_dirty = self.first_dirty_offset()?;
        let end = self
            .cleanable_end(closed, first_dirty, now_ms)
            .min(self.stable_end(closed));
        let range = self.segments.get(..end).unwrap_or_default();
        let total: u64 = range.iter().map(|s| s.size).sum();
        let dirty: u64 = range
            .iter()
            .filter(|s| s.next_offset > first_dirty)
            .map(|s| s.size)
            .sum();
        let ratio = if total == 0 {
            0.0
        } else {
            dirty as f64 / total as f64
        };
        if dirty == 0 || ratio < self.config.min_cleanable_dirty_ratio {
            return Ok(CleanStats::default());
        }
        let Some(end_offset) = self.segments.get(end).map(|s| s.base) else {
            return Ok(CleanStats::default());
        };

        let aborted = self.aborted_ranges();
        let context = Context {
            latest: self.build_offset_map(end, &aborted)?,
            protected: self.protected_batches()?,
            tombstone_horizon: now_ms.saturating_sub(self.config.delete_retention_ms),
            aborted,
        };
        let mut state = PassState::default();
        let interval = self.config.index_interval_bytes;
        let mut stats = CleanStats::default();
        let mut deleted_any = false;
        let (mut i, mut end) = (0usize, end);
        while i < end {
            let Some(segment) = self.segments.get_mut(i) else {
                break;
            };
            let before = segment.size;
            let outcome = match clean_segment(segment, &context, &mut state) {
                Ok(o) => o,
                Err(e) => {
                    remove_if_exists(&segment.cleaned_path())?;
                    return Err(e);
                }
            };
            match outcome {
                Outcome::Unchanged => {
                    i += 1;
                    continue;
                }
                Outcome::Cleaned { size: 0, removed } if i > 0 => {
                    remove_if_exists(&segment.cleaned_path())?;
                    let segment = self.segments.remove(i);
                    tracing::debug!(dir = %self.dir.display(), base = segment.base, "deleting segment emptied by compaction");
                    segment.delete()?;
                    deleted_any = true;
                    end -= 1;
                    stats.records_removed += removed;
                }
                Outcome::Cleaned { removed, .. } => {
                    if let Err(e) = segment.swap_in_cleaned(interval) {
                        remove_if_exists(&segment.cleaned_path())?;
                        return Err(e);
                    }
                    stats.bytes_after += segment.size;
                    stats.records_removed += removed;
                    i += 1;
                }
            }
            stats.segments_cleaned += 1;
            stats.bytes_before += before;
        }
        if deleted_any {
            checkpoint::sync_dir(&self.dir)?;
        }
        if state.txn_changed {
            self.rebuild_txn_indexes()?;
        }
        write_cleaner_checkpoint(&self.dir, end_offset)?;
        if stats.segments_cleaned > 0 {
            tracing::info!(
                dir = %self.dir.display(),
                segments = stats.segments_cleaned,
                bytes_before = stats.bytes_before,
                bytes_after = stats.bytes_after,
                records_removed = stats.records_removed,
                cleaned_up_to = end_offset,
                "compacted log"
            );
        }
        Ok(stats)
    }

    /// The log was truncated to `offset`: the cleaner checkpoint must not stay past it, or
    /// data written again there would count as clean.
    pub(super) fn truncate_cleaner_checkpoint(&self, offset: i64) -> Result<(), LogError> {
        match read_cleaner_checkpoint(&self.dir)? {
            Some(c) if c > offset => write_cleaner_checkpoint(&self.dir, offset),
            _ => Ok(()),
        }
    }

    /// The first offset not cleaned yet: the checkpoint, or the log start when there is none
    /// or it lies outside `[log start, active segment base]` (Kafka's reset rule).
    fn first_dirty_offset(&self) -> Result<i64, LogError> {
        let active_base = self.active().base;
        Ok(match read_cleaner_checkpoint(&self.dir)? {
            Some(c) if c >= self.log_start_offset && c <= active_base => c,
            _ => self.log_start_offset,
        })
    }

    /// Index of the first segment the pass must not touch: the active one, or with
    /// `min.compaction.lag.ms` the first dirty closed segment holding a record newer than that.
    fn cleanable_end(&self, closed: usize, first_dirty: i64, now_ms: i64) -> usize {
        let lag = self.config.min_compaction_lag_ms;
        if lag <= 0 {
            return closed;
        }
        self.segments
            .iter()
            .take(closed)
            .position(|s| {
                s.next_offset > first_dirty && s.largest_timestamp() > now_ms.saturating_sub(lag)
            })
            .unwrap_or(closed)
    }

    /// Index of the first segment holding the first unstable offset (or `closed` when no
    /// transaction is open): data of an open transaction is never cleaned, and no key it
    /// holds may supersede an older record yet.
    fn stable_end(&self, closed: usize) -> usize {
        let Some(unstable) = self.producers.first_unstable_offset() else {
            return closed;
        };
        self.segments
            .iter()
            .take(closed)
            .position(|s| s.next_offset > unstable)
            .unwrap_or(closed)
    }

    /// The aborted transactions of every segment's `.txnindex`.
    fn aborted_ranges(&self) -> AbortedRanges {
        let mut ranges: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
        for segment in &self.segments {
            for e in segment.txn_index().entries() {
                ranges
                    .entry(e.producer_id.0)
                    .or_default()
                    .push((e.first_offset.0, e.last_offset.0));
            }
        }
        for list in ranges.values_mut() {
            list.sort_unstable();
        }
        AbortedRanges(ranges)
    }

    /// Rebuilds every segment's `.txnindex` from a replay of the cleaned log, so the entries
    /// are exactly what the next open will find (an aborted transaction whose data is all
    /// gone has none; one with a batch left starts at that batch).
    fn rebuild_txn_indexes(&mut self) -> Result<(), LogError> {
        let replayed = self.replay_all()?;
        debug_assert_eq!(replayed.aborted.len(), self.segments.len());
        for (segment, entries) in self.segments.iter_mut().zip(replayed.aborted) {
            segment.set_txn_entries(entries)?;
        }
        Ok(())
    }

    /// Key → offset of its latest record over the first `end` segments. Control batches,
    /// batches of aborted transactions, records without a key and batches that cannot be
    /// decoded add nothing.
    fn build_offset_map(
        &self,
        end: usize,
        aborted: &AbortedRanges,
    ) -> Result<HashMap<Box<[u8]>, i64>, LogError> {
        let mut latest: HashMap<Box<[u8]>, i64> = HashMap::new();
        for segment in self.segments.iter().take(end) {
            let mut reader = segment.reader(CHUNK)?;
            let mut pos = 0u64;
            while let Some(h) = reader.header(pos)? {
                let size = h.total_size();
                pos += size as u64;
                if h.is_control()
                    || (h.is_transactional() && aborted.contains(h.producer_id, h.base_offset))
                {
                    continue;
                }
                let bytes = reader.bytes(pos - size as u64, size)?.ok_or_else(|| {
                    LogError::Corrupted(format!("partial batch at offset {}", h.base_offset))
                })?;
                let Some(records) = decode(&h, bytes) else {
                    continue;
                };
                for r in &records {
                    let Some(key) = &r.key else { continue };
                    match latest.get_mut(&key[..]) {
                        Some(offset) => *offset = r.offset,
                        None => {
                            latest.insert(Box::from(&key[..]), r.offset);
                        }
                    }
                }
            }
        }
        Ok(latest)
    }

    /// Base offsets of the last `CACHED_BATCHES` data batches of every producer in the whole
    /// log and of its last marker: what the producer state rebuilt at open is made of
    /// (sequences come from data batches; the producer and coordinator epochs a marker set
    /// from the last marker).
    fn protected_batches(&self) -> Result<HashSet<i64>, LogError> {
        let mut per_producer: HashMap<i64, VecDeque<i64>> = HashMap::new();
        let mut last_marker: HashMap<i64, i64> = HashMap::new();
        for segment in &self.segments {
            let mut reader = segment.reader(CHUNK)?;
            let mut pos = 0u64;
            while let Some(h) = reader.header(pos)? {
                if h.has_producer_id() && h.is_control() {
                    last_marker.insert(h.producer_id, h.base_offset);
                } else if h.has_producer_id() {
                    let batches = per_producer.entry(h.producer_id).or_default();
                    batches.push_back(h.base_offset);
                    if batches.len() > CACHED_BATCHES {
                        batches.pop_front();
                    }
                }
                pos += h.total_size() as u64;
            }
        }
        Ok(per_producer
            .into_values()
            .flatten()
            .chain(last_marker.into_values())
            .collect())
    }
}

/// Cleans one segment into its `cleaned_path()`. The file is only created at the first batch
/// that changes (the batches before it are copied then), so a segment with nothing to remove
/// costs no writes.
fn clean_segment(
    segment: &Segment,
    context: &Context,
    state: &mut PassState,
) -> Result<Outcome, LogError> {
    let mut out: Option<BufWriter<File>> = None;
    let mut written = 0u64;
    let mut removed = 0u64;
    let mut reader = segment.reader(CHUNK)?;
    let mut pos = 0u64;
    while let Some(h) = reader.header(pos)? {
        let size = h.total_size();
        let bytes = reader
            .bytes(pos, size)?
            .ok_or_else(|| LogError::Corrupted(format!("partial batch at byte {pos}")))?;
        let decision = decide(&h, bytes, context, state, segment);
        if h.is_transactional() && !matches!(decision, Decision::Keep) {
            state.txn_changed = true;
        }
        if out.is_none() && !matches!(decision, Decision::Keep) {
            let mut w = BufWriter::with_capacity(CHUNK, File::create(segment.cleaned_path())?);
            copy_prefix(segment, pos, &mut w)?;
            written = pos;
            out = Some(w);
        }
        if let Some(w) = out.as_mut() {
            match decision {
                Decision::Keep => {
                    w.write_all(bytes)?;
                    written += size as u64;
                }
                Decision::Drop { removed: n } => removed += n,
                Decision::Rewrite { bytes, removed: n } => {
                    w.write_all(&bytes)?;
                    written += bytes.len() as u64;
                    removed += n;
                }
            }
        }
        pos += size as u64;
    }
    let Some(w) = out else {
        return Ok(Outcome::Unchanged);
    };
    let file = w.into_inner().map_err(|e| LogError::Io(e.into_error()))?;
    file.sync_all()?;
    Ok(Outcome::Cleaned {
        size: written,
        removed,
    })
}

/// Decides the fate of one stored batch (see the module docs for the rules), noting in `state`
/// which producers keep data of their current transaction.
fn decide(
    h: &BatchHeader,
    bytes: &[u8],
    context: &Context,
    state: &mut PassState,
    segment: &Segment,
) -> Decision {
    let batch_time = if h.max_timestamp >= 0 {
        h.max_timestamp
    } else {
        segment.largest_timestamp()
    };
    if h.is_control() {
        // The transaction this marker ends had data kept, or the marker is not one of
        // ours, or it is the producer's last, or it is too recent: it stays.
        let had_data = state.retained.remove(&h.producer_id);
        let removable = h.has_producer_id()
            && !had_data
            && !context.protected.contains(&h.base_offset)
            && batch_time < context.tombstone_horizon
            && control::decode(bytes).is_some();
        return if removable {
            Decision::Drop { removed: 1 }
        } else {
            Decision::Keep
        };
    }
    let decision = decide_data(h, bytes, context, batch_time);
    if h.is_transactional() && !matches!(decision, Decision::Drop { .. }) {
        state.retained.insert(h.producer_id);
    }
    decision
}

/// `decide` for a data batch.
fn decide_data(h: &BatchHeader, bytes: &[u8], context: &Context, batch_time: i64) -> Decision {
    if h.has_producer_id() && context.protected.contains(&h.base_offset) {
        return Decision::Keep;
    }
    if h.is_transactional() && context.aborted.contains(h.producer_id, h.base_offset) {
        return Decision::Drop {
            removed: u64::try_from(h.record_count).unwrap_or(0),
        };
    }
    let Some(records) = decode(h, bytes) else {
        return Decision::Keep;
    };
    let tombstones_expired = batch_time < context.tombstone_horizon;
    let kept: Vec<&Record> = records
        .iter()
        .filter(|r| match &r.key {
            None => true,
            Some(key) => {
                let is_latest = context.latest.get(&key[..]).is_none_or(|&o| o == r.offset);
                is_latest && (r.value.is_some() || !tombstones_expired)
            }
        })
        .collect();
    let removed = (records.len() - kept.len()) as u64;
    if removed == 0 {
        return Decision::Keep;
    }
    if kept.is_empty() {
        return Decision::Drop { removed };
    }
    match reencode(h, &kept) {
        Ok(bytes) => Decision::Rewrite { bytes, removed },
        Err(e) => {
            tracing::warn!(offset = h.base_offset, error = %e, "cannot re-encode a compacted batch; keeping it whole");
            Decision::Keep
        }
    }
}

/// The records of a stored batch; `None` (logged) when they cannot be decoded or expand past
/// `records::MAX_DECOMPRESSED_BATCH_BYTES` (the batch is then kept whole).
fn decode(h: &BatchHeader, bytes: &[u8]) -> Option<Vec<Record>> {
    match rill_client::records::decode_batch(bytes) {
        Ok(set) => Some(set.records),
        Err(e) => {
            tracing::warn!(offset = h.base_offset, error = %e, "cannot decode a stored batch; the cleaner keeps it whole");
            None
        }
    }
}

/// Encodes `kept` (records of the batch `orig`, in offset order) as one batch in `orig`'s codec
/// with `orig`'s attributes and, for batches without a producer, its base sequence.
fn reencode(orig: &BatchHeader, kept: &[&Record]) -> Result<Vec<u8>, LogError> {
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: codec(orig.compression()),
    };
    RecordBatchEncoder::encode(&mut buf, kept.iter().copied(), &options)
        .map_err(|e| LogError::CorruptMessage(format!("encoding a compacted batch: {e}")))?;
    let mut out = buf.to_vec();
    patch_header(&mut out, orig)?;
    // Exactly one valid batch holding exactly the kept offsets, or the original stays.
    let batches = batch::validate_stored(&out)?;
    let (first, last) = match (kept.first(), kept.last()) {
        (Some(f), Some(l)) => (f.offset, l.offset),
        _ => return Err(LogError::CorruptMessage("no record to encode".into())),
    };
    match batches.as_slice() {
        [b] if b.header.base_offset == first
            && b.header.last_offset() == last
            && usize::try_from(b.header.record_count).ok() == Some(kept.len()) =>
        {
            Ok(out)
        }
        _ => Err(LogError::CorruptMessage(format!(
            "the encoder produced {} batches for offsets {first}..={last}",
            batches.len()
        ))),
    }
}

/// kafka-protocol's codec for a batch's compression attribute.
fn codec(attribute: i16) -> kafka_protocol::records::Compression {
    use kafka_protocol::records::Compression;
    match attribute {
        1 => Compression::Gzip,
        2 => Compression::Snappy,
        3 => Compression::Lz4,
        4 => Compression::Zstd,
        _ => Compression::None,
    }
}

/// Restores what the encoder does not carry over from the original header: the LogAppendTime
/// attribute with its maxTimestamp, and the base sequence -1 of a batch without a producer (the
/// encoder derives one from the records). Recomputes the CRC.
fn patch_header(out: &mut [u8], orig: &BatchHeader) -> Result<(), LogError> {
    let header = BatchHeader::parse(out)?;
    if orig.is_log_append_time() {
        put(
            out,
            21,
            &(header.attributes | ATTR_LOG_APPEND_TIME).to_be_bytes(),
        )?;
        put(out, 35, &orig.max_timestamp.to_be_bytes())?;
    }
    if !orig.has_producer_id() {
        put(out, 53, &orig.base_sequence.to_be_bytes())?;
    }
    let crc = crc32c::crc32c(out.get(CRC_START..).unwrap_or_default());
    put(out, 17, &crc.to_be_bytes())
}

fn put(out: &mut [u8], at: usize, value: &[u8]) -> Result<(), LogError> {
    out.get_mut(at..at + value.len())
        .ok_or_else(|| LogError::CorruptMessage(format!("batch too short to patch byte {at}")))?
        .copy_from_slice(value);
    Ok(())
}

/// Copies the first `len` bytes of `segment` to `w`.
fn copy_prefix(segment: &Segment, len: u64, w: &mut impl Write) -> Result<(), LogError> {
    let mut from = 0u64;
    while from < len {
        let to = len.min(from + CHUNK as u64);
        w.write_all(&segment.read_bytes(from, to)?)?;
        from = to;
    }
    Ok(())
}

fn remove_if_exists(path: &std::path::Path) -> Result<(), LogError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// Reads the partition's cleaner checkpoint (`0\n<offset>\n`), if any.
fn read_cleaner_checkpoint(dir: &std::path::Path) -> Result<Option<i64>, LogError> {
    let text = match std::fs::read_to_string(dir.join(CLEANER_CHECKPOINT)) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut lines = text.lines();
    let parsed = (lines.next().map(str::trim) == Some("0"))
        .then(|| lines.next().and_then(|l| l.trim().parse::<i64>().ok()))
        .flatten();
    if parsed.is_none() {
        tracing::warn!(dir = %dir.display(), "malformed cleaner-offset-checkpoint; cleaning from the log start");
    }
    Ok(parsed)
}

fn write_cleaner_checkpoint(dir: &std::path::Path, offset: i64) -> Result<(), LogError> {
    checkpoint::write_atomic(dir, CLEANER_CHECKPOINT, &format!("0\n{offset}\n"))
}

/// Refuses a produce holding a record without a key, as Kafka does on compacted topics
/// (INVALID_RECORD, each keyless record named by its index in the request, KIP-467). Compressed batches are walked through their decompressed stream without
/// holding any key or value (`rill_client::records::walk`), so a batch that expands enormously costs a
/// fixed buffer, and one past `rill_client::records::MAX_WALKED_BATCH_BYTES` is refused.
pub(super) fn check_keys(records: &[u8], batches: &[BatchRef]) -> Result<(), LogError> {
    let mut rejected = RejectedRecords::new(RecordRule::KeyRequired);
    let mut index: i32 = 0;
    for b in batches {
        let bytes = records
            .get(b.position..b.position + b.header.total_size())
            .ok_or_else(|| LogError::CorruptMessage("batch outside the request".into()))?;
        rill_client::records::walk(bytes, |r| {
            if r.null_key {
                rejected.push(index, || {
                    "Compacted topic cannot accept message without key.".to_string()
                });
            }
            index = index.saturating_add(1);
            true
        })?;
    }
    rejected.into_result()
}
