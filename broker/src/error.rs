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
    /// A partition-log error (its own code mapping).
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
            TopicDeletionDisabled(_) => ResponseError::TopicDeletionDisabled,
            NotLeaderOrFollower(_) => ResponseError::NotLeaderOrFollower,
            FencedLeaderEpoch(_) => ResponseError::FencedLeaderEpoch,
            UnknownLeaderEpoch(_) => ResponseError::UnknownLeaderEpoch,
            InvalidRequiredAcks(_) => ResponseError::InvalidRequiredAcks,
            UnsupportedVersion(_) => ResponseError::UnsupportedVersion,
            RequestTimedOut(_) => ResponseError::RequestTimedOut,
            NotController(_) => ResponseError::NotController,
            NoReassignmentInProgress(_) => ResponseError::NoReassignmentInProgress,
            PreferredLeaderNotAvailable(_) => ResponseError::PreferredLeaderNotAvailable,
            EligibleLeadersNotAvailable(_) => ResponseError::EligibleLeadersNotAvailable,
            ElectionNotNeeded(_) => ResponseError::ElectionNotNeeded,
            Log(e) => return e.kafka_code(),
            Unknown(_) => ResponseError::UnknownServerError,
        };
        e.code()
    }

    /// The message for APIs with an `error_message` field.
    pub fn message(&self) -> Option<kafka_protocol::protocol::StrBytes> {
        Some(kafka_protocol::protocol::StrBytes::from_string(
            self.to_string(),
        ))
    }
}
