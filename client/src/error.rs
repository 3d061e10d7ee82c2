//! The client's one error type.

use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;

/// What can go wrong talking to a Kafka-compatible cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A socket operation failed (connect, read or write), or the peer closed the connection.
    #[error("{addr}: {source}")]
    Io {
        /// The `host:port` being talked to.
        addr: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Connecting or waiting for a response took longer than allowed.
    #[error("{what} timed out after {}", fmt_duration(*.after))]
    Timeout {
        /// What was being waited for, e.g. `connect to 10.0.0.1:9092` or `Metadata v12`.
        what: String,
        /// The limit that was exceeded.
        after: Duration,
    },
    /// The peer sent something that is not valid Kafka protocol (or a request could not be
    /// encoded at the negotiated version).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// TLS or SASL set-up failed, or the broker refused the credentials.
    #[error("authentication failed: {0}")]
    Authentication(String),
    /// The broker does not implement any version of `api` that this client can speak.
    #[error("the broker does not support {api:?} in any version this client speaks")]
    UnsupportedVersion {
        /// The API in question.
        api: ApiKey,
    },
    /// The broker answered with a Kafka error code.
    #[error("{}{}", error_name(*.code), .message.as_deref().filter(|m| !m.is_empty()).map(|m| format!(": {m}")).unwrap_or_default())]
    Kafka {
        /// The Kafka error code (never 0).
        code: i16,
        /// The broker's error message, when the API carries one.
        message: Option<String>,
    },
    /// A bootstrap or broker address that is not `host:port`.
    #[error("invalid address '{0}': expected host:port")]
    InvalidAddress(String),
    /// None of the bootstrap servers could be reached; each attempt's error is listed.
    #[error("could not reach any bootstrap server ({0})")]
    NoBrokerReachable(String),
    /// A node id that the cluster metadata does not know.
    #[error("unknown node {0}: not in the cluster metadata")]
    UnknownNode(i32),
}

impl ClientError {
    /// `Ok(())` for error code 0, otherwise [`ClientError::Kafka`] with the message (if any).
    pub fn check(code: i16, message: Option<&str>) -> Result<(), ClientError> {
        if code == 0 {
            Ok(())
        } else {
            Err(ClientError::Kafka {
                code,
                message: message.map(str::to_string),
            })
        }
    }

    /// A [`ClientError::Kafka`] for a well-known error.
    pub fn kafka(error: ResponseError, message: impl Into<Option<String>>) -> ClientError {
        ClientError::Kafka {
            code: error.code(),
            message: message.into(),
        }
    }

    /// The Kafka error, when this is one.
    pub fn kafka_error(&self) -> Option<ResponseError> {
        match self {
            ClientError::Kafka { code, .. } => ResponseError::try_from_code(*code),
            _ => None,
        }
    }

    /// True when this is the Kafka error `e`.
    pub fn is(&self, e: ResponseError) -> bool {
        self.kafka_error() == Some(e)
    }

    /// True when retrying (after refreshing metadata or the coordinator) may succeed:
    /// retriable Kafka errors, timeouts and broken connections.
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Kafka { code, .. } => {
                ResponseError::try_from_code(*code).is_some_and(|e| e.is_retriable())
            }
            ClientError::Io { .. } | ClientError::Timeout { .. } => true,
            _ => false,
        }
    }

    /// True when the connection that produced this error can no longer be used (its
    /// request/response stream may be out of step).
    pub fn breaks_connection(&self) -> bool {
        matches!(
            self,
            ClientError::Io { .. } | ClientError::Timeout { .. } | ClientError::Protocol(_)
        )
    }
}

/// Kafka's name for an error code, as the Java client prints it (`UNKNOWN_TOPIC_OR_PARTITION`).
pub fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".to_string(),
        Some(ResponseError::Unknown(c)) => format!("UNKNOWN_ERROR_CODE_{c}"),
        Some(e) => {
            let camel = format!("{e:?}");
            let mut out = String::with_capacity(camel.len() + 8);
            for (i, ch) in camel.chars().enumerate() {
                if ch.is_ascii_uppercase() && i > 0 {
                    out.push('_');
                }
                out.push(ch.to_ascii_uppercase());
            }
            out
        }
    }
}

fn fmt_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_kafka() {
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(40), "INVALID_CONFIG");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(30000), "UNKNOWN_ERROR_CODE_30000");
    }

    #[test]
    fn kafka_errors_display_name_and_message() {
        let e = ClientError::check(40, Some("Invalid value x for retention.ms")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "INVALID_CONFIG: Invalid value x for retention.ms"
        );
        assert!(e.is(ResponseError::InvalidConfig));
        assert!(!e.is_retriable());
        let e = ClientError::check(15, None).unwrap_err();
        assert_eq!(e.to_string(), "COORDINATOR_NOT_AVAILABLE");
        assert!(e.is_retriable());
        assert!(ClientError::check(0, Some("x")).is_ok());
    }
}
