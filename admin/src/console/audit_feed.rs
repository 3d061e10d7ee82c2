//! Imports the `rill` CLI's changes from the cluster's `__rill_audit` topic
//! ([`crate::ops::audit`]) into the console's audit log, after each collection cycle, so `/audit`
//! lists changes made through the console and the CLI together.
//!
//! The store remembers what it imported (each row keeps its partition and offset), so a
//! restarted console resumes where it stopped and two imports of one record keep one row.

use std::collections::HashMap;

use kafka_protocol::error::ResponseError;
use rill_client::{ClientError, Cluster, TopicPartition};

use super::snapshot::Snapshot;
use super::store::Store;
use crate::ops::audit::{AuditRecord, AUDIT_TOPIC};

/// Records read per fetch.
const BATCH: usize = 500;
/// Fetches per partition per cycle (a large backlog is imported over a few cycles).
const MAX_FETCHES: usize = 10;

/// Where the import stands, per partition of the topic: the next offset to read.
#[derive(Debug, Default)]
pub struct AuditFeed {
    next: HashMap<i32, i64>,
}

impl AuditFeed {
    /// Imports the records the snapshot shows beyond what was imported. Returns how many
    /// rows were imported; an error leaves the position where it was, to retry next cycle.
    pub async fn import(
        &mut self,
        cluster: &Cluster,
        store: &Store,
        snap: &Snapshot,
    ) -> Result<usize, FeedError> {
        let Some(topic) = snap.topics.iter().find(|t| t.name == AUDIT_TOPIC) else {
            return Ok(0);
        };
        let mut imported = 0;
        for p in &topic.partitions {
            let mut next = match self.next.get(&p.partition) {
                Some(n) => *n,
                None => store.cli_audit_next_offset(p.partition).await?,
            };
            // Records before the log start were deleted by retention.
            next = next.max(p.earliest);
            let tp = TopicPartition::new(AUDIT_TOPIC.to_string(), p.partition);
            for _ in 0..MAX_FETCHES {
                if next >= p.latest {
                    break;
                }
                let fetched = match cluster.fetch_records(&tp, next, BATCH).await {
                    Ok(f) => f,
                    Err(e) if e.kafka_error() == Some(ResponseError::OffsetOutOfRange) => {
                        next = next.max(p.earliest);
                        break;
                    }
                    Err(e) => return Err(e.into()),
                };
                let Some(last) = fetched.records.last().map(|r| r.offset) else {
                    break;
                };
                for r in &fetched.records {
                    let parsed = r
                        .value
                        .as_deref()
                        .map(serde_json::from_slice::<AuditRecord>);
                    match parsed {
                        Some(Ok(record)) => {
                            store
                                .import_cli_audit(p.partition, r.offset, &record)
                                .await?;
                            imported += 1;
                        }
                        // Somebody else's record in our topic: skip it.
                        _ => tracing::warn!(
                            partition = p.partition,
                            offset = r.offset,
                            "skipping a record of {AUDIT_TOPIC} that is not a rill audit record"
                        ),
                    }
                }
                next = last + 1;
            }
            self.next.insert(p.partition, next);
        }
        Ok(imported)
    }
}

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// Reading the topic failed.
    #[error("cannot read {AUDIT_TOPIC}: {0}")]
    Cluster(#[from] ClientError),
    /// Writing the store failed.
    #[error("cannot import {AUDIT_TOPIC}: {0}")]
    Store(#[from] super::store::StoreError),
}
