//! Why the coordinator refuses a request ([`TxnError`], each a Kafka error code) and the
//! renaming of PRODUCER_FENCED to INVALID_PRODUCER_EPOCH for older request versions
//! ([`TxnApi`]).

use kafka_protocol::error::ResponseError;

/// The transactional APIs whose answers depend on the request version (for the renaming of
/// PRODUCER_FENCED).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnApi {
    /// InitProducerId (22).
    InitProducerId,
    /// AddPartitionsToTxn (24).
    AddPartitionsToTxn,
    /// AddOffsetsToTxn (25).
    AddOffsetsToTxn,
    /// EndTxn (26).
    EndTxn,
}

impl TxnApi {
    /// The first version of the API whose clients know PRODUCER_FENCED (90, KIP-588); older
    /// ones get INVALID_PRODUCER_EPOCH (47) instead, which they handle the same way.
    pub const fn first_version_with_producer_fenced(self) -> i16 {
        match self {
            TxnApi::InitProducerId => 4,
            TxnApi::AddPartitionsToTxn | TxnApi::AddOffsetsToTxn | TxnApi::EndTxn => 2,
        }
    }
}

/// Why the coordinator refuses a request, each a Kafka error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxnError {
    /// INVALID_REQUEST (42): an empty transactional id.
    #[error("the transactional id is empty")]
    InvalidRequest,
    /// INVALID_PRODUCER_ID_MAPPING (49): no such id, or another producer id owns it.
    #[error("the producer id is not the one assigned to this transactional id")]
    InvalidProducerIdMapping,
    /// PRODUCER_FENCED (90): a newer producer instance owns the id (INVALID_PRODUCER_EPOCH for
    /// old request versions, see [`TxnError::code_for`]).
    #[error("a newer producer with the same transactional id fenced this one")]
    ProducerFenced,
    /// CONCURRENT_TRANSACTIONS (51): another change to the id is in progress; retry.
    #[error("another operation on this transactional id is in progress")]
    ConcurrentTransactions,
    /// INVALID_TXN_STATE (48): the request does not fit the transaction's state.
    #[error("the request does not fit the transaction's state")]
    InvalidTxnState,
    /// INVALID_TRANSACTION_TIMEOUT (50): not in `1..=transaction.max.timeout.ms`.
    #[error("transaction timeout out of range")]
    InvalidTransactionTimeout,
    /// An error from outside the state machine passed through (e.g. producer id allocation).
    #[error("{0}")]
    Other(ResponseError),
    /// UNKNOWN_SERVER_ERROR (-1): a transition Kafka treats as impossible; a bug, never the
    /// client's doing.
    #[error("illegal transaction state: {0}")]
    IllegalState(String),
}

impl TxnError {
    /// The Kafka error code.
    pub fn code(&self) -> i16 {
        let e = match self {
            TxnError::InvalidRequest => ResponseError::InvalidRequest,
            TxnError::InvalidProducerIdMapping => ResponseError::InvalidProducerIdMapping,
            TxnError::ProducerFenced => ResponseError::ProducerFenced,
            TxnError::ConcurrentTransactions => ResponseError::ConcurrentTransactions,
            TxnError::InvalidTxnState => ResponseError::InvalidTxnState,
            TxnError::InvalidTransactionTimeout => ResponseError::InvalidTransactionTimeout,
            TxnError::Other(e) => *e,
            TxnError::IllegalState(_) => ResponseError::UnknownServerError,
        };
        e.code()
    }

    /// The code for a response of `api` at `version`: PRODUCER_FENCED becomes
    /// INVALID_PRODUCER_EPOCH for clients older than KIP-588 (Kafka's `KafkaApis` does this for
    /// InitProducerId v<4 and AddPartitionsToTxn, AddOffsetsToTxn, EndTxn v<2).
    pub fn code_for(&self, api: TxnApi, version: i16) -> i16 {
        match self {
            TxnError::ProducerFenced if version < api.first_version_with_producer_fenced() => {
                ResponseError::InvalidProducerEpoch.code()
            }
            e => e.code(),
        }
    }
}

pub(crate) fn illegal(what: impl Into<String>) -> TxnError {
    TxnError::IllegalState(what.into())
}
