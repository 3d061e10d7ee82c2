//! The cluster's audit trail of `rill` CLI changes: the topic `__rill_audit`, one JSON
//! record per change the CLI attempted (who, when, which command, the outcome).
//!
//! Why a topic rather than a file or a call to the console: the CLI knows only the cluster
//! (it may run on any machine, with no console in sight), and the topic is replicated and
//! readable by any Kafka tool. Each console imports it into its own audit log
//! (`console::audit_feed`), so the console's `/audit` page lists console and CLI changes
//! together.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use rill_client::browse::NewRecord;
use rill_client::{ClientError, Cluster, NewTopic, TopicPartition};
use serde::{Deserialize, Serialize};

use crate::clock::now_ms;

/// The topic holding the CLI's audit records.
pub const AUDIT_TOPIC: &str = "__rill_audit";

/// How long the topic keeps records: 90 days (`retention.ms`).
const RETENTION_MS: &str = "7776000000";

/// Produce attempts while a just-created topic elects its leader.
const PRODUCE_ATTEMPTS: u32 = 20;

/// One change made through the CLI, as stored in [`AUDIT_TOPIC`] (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When the command finished, ms since the epoch.
    pub ts_ms: i64,
    /// `user@host` of the operator ($USER or $LOGNAME, and the host name).
    pub user: String,
    /// The console's action names: `create-topic`, `delete-topic`, `alter-config`,
    /// `add-partitions`, `reset-offsets`, `delete-group`, `elect-leaders`,
    /// `reassign-execute`, `reassign-cancel`.
    pub action: String,
    /// A topic, a group, or `cluster`.
    pub target: String,
    /// The command line, without the program name.
    pub argv: Vec<String>,
    /// `ok` or the error message.
    pub result: String,
    /// Whether the change succeeded.
    pub ok: bool,
}

impl AuditRecord {
    /// A record of `action` on `target` made now by this process's user, with its outcome.
    pub fn new(action: &str, target: &str, outcome: Result<(), String>) -> AuditRecord {
        AuditRecord {
            ts_ms: now_ms(),
            user: operator(),
            action: action.to_string(),
            target: target.to_string(),
            argv: std::env::args().skip(1).collect(),
            ok: outcome.is_ok(),
            result: outcome.err().unwrap_or_else(|| "ok".to_string()),
        }
    }

    /// The request column of the console's audit log: the command line as JSON.
    pub fn request_json(&self) -> String {
        serde_json::json!({ "via": "rill CLI", "argv": self.argv }).to_string()
    }
}

/// Appends `record` to [`AUDIT_TOPIC`], creating the topic first if it is missing
/// (replication factor min(3, brokers), 90 days' retention). Written with acks=all.
pub async fn append(cluster: &Cluster, record: &AuditRecord) -> Result<i64, ClientError> {
    let value = serde_json::to_vec(record).map_err(|e| ClientError::Protocol(e.to_string()))?;
    let tp = TopicPartition::new(AUDIT_TOPIC.to_string(), 0);
    let mut created = false;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let new = NewRecord {
            key: Some(Bytes::from(record.user.clone())),
            value: Some(Bytes::from(value.clone())),
            headers: Vec::new(),
        };
        let err = match cluster.produce_record(&tp, new).await {
            Ok(offset) => return Ok(offset),
            Err(e) => e,
        };
        let missing = err.kafka_error() == Some(ResponseError::UnknownTopicOrPartition);
        if missing && !created {
            create_topic(cluster).await?;
            created = true;
            continue;
        }
        let retriable = missing
            || matches!(
                err.kafka_error(),
                Some(
                    ResponseError::LeaderNotAvailable
                        | ResponseError::NotLeaderOrFollower
                        | ResponseError::NotEnoughReplicas
                )
            );
        if !retriable || attempt >= PRODUCE_ATTEMPTS {
            return Err(err);
        }
        // A new topic's leader (or a moved one) shows up in metadata within a few
        // controller round trips.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn create_topic(cluster: &Cluster) -> Result<(), ClientError> {
    let brokers = cluster.brokers().len().clamp(1, 3);
    let topic = NewTopic {
        name: AUDIT_TOPIC.to_string(),
        partitions: Some(1),
        replication_factor: Some(i16::try_from(brokers).unwrap_or(1)),
        configs: vec![
            ("retention.ms".to_string(), RETENTION_MS.to_string()),
            ("cleanup.policy".to_string(), "delete".to_string()),
        ],
    };
    for (_, r) in cluster.create_topics(&[topic]).await? {
        match r {
            Err(e) if e.kafka_error() != Some(ResponseError::TopicAlreadyExists) => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// `user@host` of whoever runs this process.
fn operator() -> String {
    let user = ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "unknown".to_string());
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty());
    match host {
        Some(h) => format!("{user}@{h}"),
        None => user,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_carry_the_outcome() {
        let ok = AuditRecord::new("create-topic", "t", Ok(()));
        assert!(ok.ok);
        assert_eq!(ok.result, "ok");
        assert!(ok.user.starts_with(&operator()[..1]));
        let bad = AuditRecord::new("delete-topic", "t", Err("UNKNOWN_TOPIC".into()));
        assert!(!bad.ok);
        assert_eq!(bad.result, "UNKNOWN_TOPIC");
        let text = serde_json::to_string(&bad).unwrap();
        assert_eq!(serde_json::from_str::<AuditRecord>(&text).unwrap(), bad);
        let req: serde_json::Value = serde_json::from_str(&bad.request_json()).unwrap();
        assert_eq!(req["via"], "rill CLI");
        assert!(req["argv"].is_array());
    }
}
