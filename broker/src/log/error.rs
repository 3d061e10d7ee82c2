//! The errors of the partition log and their Kafka error codes.

use crate::types::{CoordinatorEpoch, Offset, ProducerEpoch, ProducerId};

/// Everything that can go wrong appending to, reading from or maintaining a partition log.
#[derive(thiserror::Error, Debug)]
pub enum LogError {
    /// A batch failed its CRC or header checks (CORRUPT_MESSAGE, 2).
    #[error("corrupt message: {0}")]
    CorruptMessage(String),
    /// A batch is well formed but breaks a rule about its records (INVALID_RECORD, 87).
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// One batch is larger than `max.message.bytes` (MESSAGE_TOO_LARGE, 10).
    #[error("batch of {size} bytes is larger than max.message.bytes {max}")]
    MessageTooLarge {
        /// Size of the offending batch in bytes.
        size: usize,
        /// The configured limit.
        max: u32,
    },
    /// The whole produce blob is larger than a segment (RECORD_LIST_TOO_LARGE, 18).
    #[error("record list of {size} bytes is larger than segment.bytes {max}")]
    RecordListTooLarge {
        /// Size of the blob in bytes.
        size: usize,
        /// The configured `segment.bytes`.
        max: u64,
    },
    /// The requested offset is not in the log (OFFSET_OUT_OF_RANGE, 1).
    #[error("offset {requested} is out of range [{start}, {end}]")]
    OffsetOutOfRange {
        /// The offset asked for.
        requested: Offset,
        /// Log start offset.
        start: Offset,
        /// Upper limit that applied (log end offset, or the high watermark for DeleteRecords).
        end: Offset,
    },
    /// An idempotent producer skipped or reordered sequence numbers (OUT_OF_ORDER_SEQUENCE_NUMBER, 45).
    #[error("out of order sequence for producer {producer_id}: expected {expected}, received {received}")]
    OutOfOrderSequence {
        /// The producer.
        producer_id: ProducerId,
        /// The sequence the log expected next (-1 when any sequence 0 was expected after an epoch bump).
        expected: i32,
        /// The batch's base sequence.
        received: i32,
    },
    /// A producer wrote with an epoch older than the one the log knows (INVALID_PRODUCER_EPOCH, 47).
    #[error("producer {producer_id} has epoch {received}, older than current epoch {current}")]
    InvalidProducerEpoch {
        /// The producer.
        producer_id: ProducerId,
        /// The epoch the log knows.
        current: ProducerEpoch,
        /// The epoch of the batch.
        received: ProducerEpoch,
    },
    /// A non-transactional batch from a producer with an open transaction (INVALID_TXN_STATE, 48).
    #[error(
        "producer {producer_id} has an open transaction; a non-transactional batch is not allowed"
    )]
    InvalidTxnState {
        /// The producer.
        producer_id: ProducerId,
    },
    /// A transaction marker from a coordinator older than the one that wrote this producer's
    /// last marker (TRANSACTION_COORDINATOR_FENCED, 52).
    #[error(
        "marker for producer {producer_id} has coordinator epoch {received}, older than {current}"
    )]
    TransactionCoordinatorFenced {
        /// The producer.
        producer_id: ProducerId,
        /// The coordinator epoch of the producer's last marker.
        current: CoordinatorEpoch,
        /// The coordinator epoch of the marker.
        received: CoordinatorEpoch,
    },
    /// A timestamp broke the topic's timestamp rules (INVALID_TIMESTAMP, 32).
    #[error("invalid timestamp: {0}")]
    InvalidTimestamp(String),
    /// Records broke a rule of the topic (INVALID_RECORD, 87, or INVALID_TIMESTAMP, 32), each
    /// one named (KIP-467's `record_errors`) so a client fails only those.
    #[error("{0}")]
    RecordsRejected(RejectedRecords),
    /// A follower append did not start at the log end offset; replication must truncate or
    /// refetch (Kafka's internal UnexpectedAppendOffsetException, never sent to clients as such).
    #[error("follower append at offset {received} but the log end offset is {expected}")]
    UnexpectedAppendOffset {
        /// The log end offset.
        expected: Offset,
        /// The base offset of the first batch received.
        received: Offset,
    },
    /// The file system failed (KAFKA_STORAGE_ERROR, 56).
    #[error("log I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// On-disk damage that could not be repaired (KAFKA_STORAGE_ERROR, 56).
    #[error("log corrupted: {0}")]
    Corrupted(String),
    /// The partition's log dir was taken offline by an earlier storage error
    /// (KAFKA_STORAGE_ERROR, 56); it serves nothing until the node restarts.
    #[error("log dir offline: {0}")]
    Offline(String),
}

impl From<rill_client::records::RecordsError> for LogError {
    /// A batch whose records could not be read: too large to read is a rule broken
    /// (INVALID_RECORD), damage is CORRUPT_MESSAGE, a malformed record INVALID_RECORD.
    fn from(e: rill_client::records::RecordsError) -> Self {
        use rill_client::records::RecordsError;
        match e {
            RecordsError::TooLarge { .. } | RecordsError::Invalid(_) => {
                LogError::InvalidRecord(e.to_string())
            }
            RecordsError::Corrupt(_) => LogError::CorruptMessage(e.to_string()),
        }
    }
}

/// The rule a produced record broke, for [`RejectedRecords`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordRule {
    /// A record without a key in a compacted topic (INVALID_RECORD).
    KeyRequired,
    /// A CreateTime timestamp out of the topic's bounds (INVALID_TIMESTAMP).
    TimestampBounds,
}

/// One refused record (KIP-467's `BatchIndexAndErrorMessage`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// The record's index among the partition's records in the request (from 0).
    pub batch_index: i32,
    /// Why; `None` past [`MAX_RECORD_ERROR_MESSAGES`], so the answer stays no larger than
    /// the request it answers.
    pub message: Option<String>,
}

/// Most record errors answered with their own message; later ones carry only their index.
pub const MAX_RECORD_ERROR_MESSAGES: usize = 20;

/// The records a produce was refused for, in request order. Each refused record appears once,
/// so the list is bounded by the records the request holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRecords {
    /// The rule they broke.
    pub rule: RecordRule,
    /// The refused records.
    pub errors: Vec<RecordError>,
}

impl RejectedRecords {
    /// An empty list for `rule`.
    pub fn new(rule: RecordRule) -> RejectedRecords {
        RejectedRecords {
            rule,
            errors: Vec::new(),
        }
    }

    /// Notes the record at `batch_index`, with `message` while messages are still kept.
    pub fn push(&mut self, batch_index: i32, message: impl FnOnce() -> String) {
        let message = (self.errors.len() < MAX_RECORD_ERROR_MESSAGES).then(message);
        self.errors.push(RecordError {
            batch_index,
            message,
        });
    }

    /// `Err` with these records when there are any.
    pub fn into_result(self) -> Result<(), LogError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(LogError::RecordsRejected(self))
        }
    }
}

impl std::fmt::Display for RejectedRecords {
    /// Kafka's summary (`LogValidator`): how many, and the first three.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: [",
            self.errors.len()
        )?;
        for (i, e) in self.errors.iter().take(3).enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(
                f,
                "RecordError(batchIndex={}, message={})",
                e.batch_index,
                e.message.as_deref().unwrap_or("null")
            )?;
        }
        f.write_str("]")
    }
}
