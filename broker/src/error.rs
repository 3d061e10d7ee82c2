//! The broker's errors and the one place they turn into Kafka error codes.

use kafka_protocol::error::ResponseError;

use crate::log::LogError;

/// An error a request can fail with, carrying the message sent back where the API has a field
/// for one.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// UNKNOWN_TOPIC_OR_PARTITION (3).
    #[error("{0}")]
    UnknownTopicOrPartition(String),
    /// UNKNOWN_TOPIC_ID (100).
    #[error("{0}")]
    UnknownTopicId(String),
    /// TOPIC_ALREADY_EXISTS (36).
    #[error("{0}")]
    TopicAlreadyExists(String),
    /// INVALID_TOPIC_EXCEPTION (17).
    #[error("{0}")]
    InvalidTopic(String),
    /// INVALID_PARTITIONS (37).
    #[error("{0}")]
    InvalidPartitions(String),
    /// INVALID_REPLICATION_FACTOR (38).
    #[error("{0}")]
    InvalidReplicationFactor(String),
    /// INVALID_REPLICA_ASSIGNMENT (39).
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    /// INVALID_CONFIG (40).
    #[error("{0}")]
    InvalidConfig(String),
    /// INVALID_REQUEST (42).
    #[error("{0}")]
    InvalidRequest(String),
    /// POLICY_VIOLATION (44).
    #[error("{0}")]
    PolicyViolation(String),
    /// THROTTLING_QUOTA_EXCEEDED (89): a client over its `controller_mutation_rate`.
    #[error("{0}")]
    ThrottlingQuotaExceeded(String),
    /// TOPIC_DELETION_DISABLED (73).
    #[error("{0}")]
    TopicDeletionDisabled(String),
    /// NOT_LEADER_OR_FOLLOWER (6).
    #[error("{0}")]
    NotLeaderOrFollower(String),
    /// FENCED_LEADER_EPOCH (74).
    #[error("{0}")]
    FencedLeaderEpoch(String),
    /// UNKNOWN_LEADER_EPOCH (75).
    #[error("{0}")]
    UnknownLeaderEpoch(String),
    /// INVALID_REQUIRED_ACKS (21).
    #[error("{0}")]
    InvalidRequiredAcks(String),
    /// UNSUPPORTED_VERSION (35).
    #[error("{0}")]
    UnsupportedVersion(String),
    /// UNSUPPORTED_COMPRESSION_TYPE (76).
    #[error("{0}")]
    UnsupportedCompressionType(String),
    /// REQUEST_TIMED_OUT (7).
    #[error("{0}")]
    RequestTimedOut(String),
    /// NOT_CONTROLLER (41): the metadata quorum cannot take the change now.
    #[error("{0}")]
    NotController(String),
    /// NO_REASSIGNMENT_IN_PROGRESS (85): a cancel for a partition that is not reassigning.
    #[error("{0}")]
    NoReassignmentInProgress(String),
    /// PREFERRED_LEADER_NOT_AVAILABLE (80): the preferred replica is fenced or out of the ISR.
    #[error("{0}")]
    PreferredLeaderNotAvailable(String),
    /// ELIGIBLE_LEADERS_NOT_AVAILABLE (83): no live replica can lead.
    #[error("{0}")]
    EligibleLeadersNotAvailable(String),
    /// ELECTION_NOT_NEEDED (84): the partition already has the leader asked for.
    #[error("{0}")]
    ElectionNotNeeded(String),
    /// NOT_ENOUGH_REPLICAS (19): an acks=all write refused before its append, the ISR being
    /// smaller than `min.insync.replicas`.
    #[error("{0}")]
    NotEnoughReplicas(String),
    /// NOT_ENOUGH_REPLICAS_AFTER_APPEND (20): appended, but the ISR shrank below
    /// `min.insync.replicas` before the write was replicated.
    #[error("{0}")]
    NotEnoughReplicasAfterAppend(String),
    /// UNACCEPTABLE_CREDENTIAL (93): a SCRAM credential Kafka would refuse (empty user,
    /// iterations out of range, empty salt or salted password).
    #[error("{0}")]
    UnacceptableCredential(String),
    /// RESOURCE_NOT_FOUND (91): e.g. deleting or describing a credential that does not exist.
    #[error("{0}")]
    ResourceNotFound(String),
    /// DUPLICATE_RESOURCE (92): the same resource twice in one request.
    #[error("{0}")]
    DuplicateResource(String),
    /// UNSUPPORTED_SASL_MECHANISM (33).
    #[error("{0}")]
    UnsupportedSaslMechanism(String),
    /// TOPIC_AUTHORIZATION_FAILED (29).
    #[error("{0}")]
    TopicAuthorizationFailed(String),
    /// GROUP_AUTHORIZATION_FAILED (30).
    #[error("{0}")]
    GroupAuthorizationFailed(String),
    /// A transactional produce the transaction coordinator did not verify (KIP-890): the
    /// code to answer (INVALID_TXN_STATE, INVALID_PRODUCER_EPOCH, NOT_ENOUGH_REPLICAS to
    /// retry, ...) and why.
    #[error("{1}")]
    TxnVerification(ResponseError, String),
    /// TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53).
    #[error("{0}")]
    TransactionalIdAuthorizationFailed(String),
    /// CLUSTER_AUTHORIZATION_FAILED (31).
    #[error("{0}")]
    ClusterAuthorizationFailed(String),
    /// A partition-log error (mapped to its code in [`KafkaError::code`]).
    #[error(transparent)]
    Log(#[from] LogError),
    /// UNKNOWN_SERVER_ERROR (-1): a bug or an I/O problem, never a client's fault.
    #[error("{0}")]
    Unknown(String),
}

impl KafkaError {
    /// The Kafka error code for the wire.
    pub fn code(&self) -> i16 {
        use KafkaError::*;
        let e = match self {
            UnknownTopicOrPartition(_) => ResponseError::UnknownTopicOrPartition,
            UnknownTopicId(_) => ResponseError::UnknownTopicId,
            TopicAlreadyExists(_) => ResponseError::TopicAlreadyExists,
            InvalidTopic(_) => ResponseError::InvalidTopicException,
            InvalidPartitions(_) => ResponseError::InvalidPartitions,
            InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
            InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment,
            InvalidConfig(_) => ResponseError::InvalidConfig,
            InvalidRequest(_) => ResponseError::InvalidRequest,
            PolicyViolation(_) => ResponseError::PolicyViolation,
            ThrottlingQuotaExceeded(_) => ResponseError::ThrottlingQuotaExceeded,
            TopicDeletionDisabled(_) => ResponseError::TopicDeletionDisabled,
            NotLeaderOrFollower(_) => ResponseError::NotLeaderOrFollower,
            FencedLeaderEpoch(_) => ResponseError::FencedLeaderEpoch,
            UnknownLeaderEpoch(_) => ResponseError::UnknownLeaderEpoch,
            InvalidRequiredAcks(_) => ResponseError::InvalidRequiredAcks,
            UnsupportedVersion(_) => ResponseError::UnsupportedVersion,
            UnsupportedCompressionType(_) => ResponseError::UnsupportedCompressionType,
            RequestTimedOut(_) => ResponseError::RequestTimedOut,
            NotController(_) => ResponseError::NotController,
            NoReassignmentInProgress(_) => ResponseError::NoReassignmentInProgress,
            PreferredLeaderNotAvailable(_) => ResponseError::PreferredLeaderNotAvailable,
            EligibleLeadersNotAvailable(_) => ResponseError::EligibleLeadersNotAvailable,
            ElectionNotNeeded(_) => ResponseError::ElectionNotNeeded,
            NotEnoughReplicas(_) => ResponseError::NotEnoughReplicas,
            NotEnoughReplicasAfterAppend(_) => ResponseError::NotEnoughReplicasAfterAppend,
            UnacceptableCredential(_) => ResponseError::UnacceptableCredential,
            ResourceNotFound(_) => ResponseError::ResourceNotFound,
            DuplicateResource(_) => ResponseError::DuplicateResource,
            UnsupportedSaslMechanism(_) => ResponseError::UnsupportedSaslMechanism,
            TopicAuthorizationFailed(_) => ResponseError::TopicAuthorizationFailed,
            GroupAuthorizationFailed(_) => ResponseError::GroupAuthorizationFailed,
            TxnVerification(code, _) => *code,
            TransactionalIdAuthorizationFailed(_) => {
                ResponseError::TransactionalIdAuthorizationFailed
            }
            ClusterAuthorizationFailed(_) => ResponseError::ClusterAuthorizationFailed,
            Log(e) => log_error(e),
            Unknown(_) => ResponseError::UnknownServerError,
        };
        e.code()
    }

    /// The [`ResponseError`] for this error, for APIs that carry one (the group coordinator).
    pub fn response_error(&self) -> ResponseError {
        ResponseError::try_from_code(self.code()).unwrap_or(ResponseError::UnknownServerError)
    }

    /// The message for APIs with an `error_message` field.
    pub fn message(&self) -> Option<kafka_protocol::protocol::StrBytes> {
        Some(kafka_protocol::protocol::StrBytes::from_string(
            self.to_string(),
        ))
    }
}

/// The Kafka error for a partition-log error: the one place log errors become codes.
fn log_error(e: &LogError) -> ResponseError {
    match e {
        LogError::CorruptMessage(_) => ResponseError::CorruptMessage,
        LogError::InvalidRecord(_) => ResponseError::InvalidRecord,
        LogError::MessageTooLarge { .. } => ResponseError::MessageTooLarge,
        LogError::RecordListTooLarge { .. } => ResponseError::RecordListTooLarge,
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        LogError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
        LogError::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch,
        LogError::InvalidTimestamp(_) => ResponseError::InvalidTimestamp,
        LogError::RecordsRejected(r) => match r.rule {
            crate::log::RecordRule::KeyRequired => ResponseError::InvalidRecord,
            crate::log::RecordRule::TimestampBounds => ResponseError::InvalidTimestamp,
        },
        LogError::InvalidTxnState { .. } => ResponseError::InvalidTxnState,
        LogError::TransactionCoordinatorFenced { .. } => {
            ResponseError::TransactionCoordinatorFenced
        }
        // Internal to replication: a client never causes it, so UNKNOWN_SERVER_ERROR.
        LogError::UnexpectedAppendOffset { .. } => ResponseError::UnknownServerError,
        LogError::Io(_) | LogError::Corrupted(_) | LogError::Offline(_) => {
            ResponseError::KafkaStorageError
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_errors_keep_their_kafka_codes() {
        let cases: Vec<(LogError, i16)> = vec![
            (LogError::CorruptMessage(String::new()), 2),
            (LogError::InvalidRecord(String::new()), 87),
            (LogError::MessageTooLarge { size: 2, max: 1 }, 10),
            (LogError::RecordListTooLarge { size: 2, max: 1 }, 18),
            (LogError::InvalidTimestamp(String::new()), 32),
            (
                LogError::RecordsRejected(crate::log::RejectedRecords::new(
                    crate::log::RecordRule::KeyRequired,
                )),
                87,
            ),
            (
                LogError::RecordsRejected(crate::log::RejectedRecords::new(
                    crate::log::RecordRule::TimestampBounds,
                )),
                32,
            ),
            (
                LogError::InvalidTxnState {
                    producer_id: crate::types::ProducerId(1),
                },
                48,
            ),
            (
                LogError::TransactionCoordinatorFenced {
                    producer_id: crate::types::ProducerId(1),
                    current: crate::types::CoordinatorEpoch(2),
                    received: crate::types::CoordinatorEpoch(1),
                },
                52,
            ),
            (LogError::Offline(String::new()), 56),
            (LogError::Corrupted(String::new()), 56),
        ];
        for (e, code) in cases {
            assert_eq!(KafkaError::Log(e).code(), code);
        }
        assert_eq!(
            KafkaError::NotEnoughReplicas(String::new()).response_error(),
            ResponseError::NotEnoughReplicas
        );
    }
}
