//! `rill transactions`: kafka-transactions.sh's verbs and flags — `list`, `describe
//! --transactional-id`, `describe-producers --topic --partition`, `find-hanging (--broker-id |
//! --topic [--partition]) [--max-transaction-timeout MINUTES]` and `abort --topic --partition
//! (--start-offset | --producer-id --producer-epoch --coordinator-epoch)`, with its column
//! names. `abort` changes the partition for good, so it also needs `--force`.

use clap::{Args, Subcommand};
use rill_client::{AbortSpec, HangingScope, TopicPartition, TransactionFilter};
use serde_json::json;

use crate::cli::{print_json, Change, CliError, ConnectArgs, Output, Table};

/// Arguments of `rill transactions`.
#[derive(Args, Debug)]
pub struct TransactionsArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(subcommand)]
    verb: Verb,
}

/// kafka-transactions.sh's commands.
#[derive(Subcommand, Debug)]
enum Verb {
    /// List every transactional id of the cluster (ListTransactions on every broker).
    List {
        /// Only ids in this state (Kafka's names: Ongoing, PrepareCommit, ...); repeatable.
        #[arg(long, value_name = "STATE")]
        state: Vec<String>,
        /// Only ids of this producer id; repeatable.
        #[arg(long = "producer-id", value_name = "ID")]
        producer_id: Vec<i64>,
        /// Only transactions running for longer than this many ms (KIP-994).
        #[arg(long = "duration-filter", value_name = "MS")]
        duration_filter: Option<i64>,
    },
    /// Describe the state of a transactional id at its coordinator.
    Describe {
        /// The transactional id.
        #[arg(long = "transactional-id", value_name = "ID")]
        transactional_id: String,
    },
    /// Describe the producers of a partition (at its leader).
    DescribeProducers {
        /// Topic name.
        #[arg(long)]
        topic: String,
        /// Partition number.
        #[arg(long)]
        partition: i32,
    },
    /// Find open transactions that no coordinator will end.
    FindHanging {
        /// Search the partitions with a replica on this broker.
        #[arg(long = "broker-id", value_name = "ID")]
        broker_id: Option<i32>,
        /// Search this topic.
        #[arg(long)]
        topic: Option<String>,
        /// Only this partition of --topic.
        #[arg(long)]
        partition: Option<i32>,
        /// Only transactions whose producer last wrote longer ago than this (minutes;
        /// Kafka's default transaction.max.timeout.ms).
        #[arg(long = "max-transaction-timeout", value_name = "MINUTES", default_value_t = 15,
              value_parser = clap::value_parser!(i64).range(0..=525_600))]
        max_transaction_timeout: i64,
    },
    /// Abort a hanging transaction by writing an ABORT marker at the partition's leader.
    Abort {
        /// Topic name.
        #[arg(long)]
        topic: String,
        /// Partition number.
        #[arg(long)]
        partition: i32,
        /// Start offset of the open transaction to abort (the producer is looked up).
        #[arg(long = "start-offset", value_name = "OFFSET")]
        start_offset: Option<i64>,
        /// Producer id (instead of --start-offset).
        #[arg(long = "producer-id", value_name = "ID")]
        producer_id: Option<i64>,
        /// Producer epoch (with --producer-id).
        #[arg(long = "producer-epoch", value_name = "EPOCH")]
        producer_epoch: Option<i16>,
        /// Coordinator epoch (with --producer-id; negative means none: 0 is written).
        #[arg(long = "coordinator-epoch", value_name = "EPOCH")]
        coordinator_epoch: Option<i32>,
        /// Confirm the abort: the transaction's records become aborted for good.
        #[arg(long)]
        force: bool,
    },
}

impl TransactionsArgs {
    /// The change this command attempts, if any (for the audit trail).
    pub fn change(&self) -> Option<Change> {
        match &self.verb {
            Verb::Abort {
                topic,
                partition,
                force: true,
                ..
            } => Some(Change::new(
                "abort-transaction",
                format!("{topic}-{partition}"),
                &self.connect,
            )),
            _ => None,
        }
    }
}

fn usage(m: impl Into<String>) -> CliError {
    CliError::Usage(m.into())
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "None".to_string(), |v| v.to_string())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Runs `rill transactions`.
pub async fn run(args: TransactionsArgs) -> Result<(), CliError> {
    // Usage is checked before connecting: bad flags attempt nothing.
    if let Verb::FindHanging {
        broker_id,
        topic,
        partition,
        ..
    } = &args.verb
    {
        if broker_id.is_none() && topic.is_none() {
            return Err(usage("find-hanging needs --broker-id or --topic"));
        }
        if partition.is_some() && topic.is_none() {
            return Err(usage("--partition needs --topic"));
        }
    }
    if let Verb::Abort {
        start_offset,
        producer_id,
        producer_epoch,
        coordinator_epoch,
        force,
        ..
    } = &args.verb
    {
        match (start_offset, producer_id) {
            (None, None) => {
                return Err(usage(
                    "abort needs --start-offset, or --producer-id, --producer-epoch and --coordinator-epoch",
                ))
            }
            (Some(_), Some(_)) => {
                return Err(usage("give --start-offset or --producer-id, not both"))
            }
            (None, Some(_)) if producer_epoch.is_none() || coordinator_epoch.is_none() => {
                return Err(usage(
                    "--producer-id needs --producer-epoch and --coordinator-epoch",
                ))
            }
            _ => {}
        }
        if !force {
            return Err(usage(
                "abort ends the transaction's records as aborted for good: add --force to confirm",
            ));
        }
    }
    let cluster = args.connect.connect().await?;
    let output = args.connect.output;
    match args.verb {
        Verb::List {
            state,
            producer_id,
            duration_filter,
        } => {
            let filter = TransactionFilter {
                states: state,
                producer_ids: producer_id,
                min_duration_ms: duration_filter,
            };
            let list = cluster
                .list_transactions(&filter)
                .await
                .map_err(|e| CliError::client("Failed to list transactions", e))?;
            match output {
                Output::Json => print_json(&json!({ "transactions": list })),
                Output::Table => {
                    let mut t = Table::new(&[
                        "TransactionalId",
                        "Coordinator",
                        "ProducerId",
                        "TransactionState",
                    ]);
                    for l in list {
                        t.row(vec![
                            l.transactional_id,
                            l.coordinator.to_string(),
                            l.producer_id.to_string(),
                            l.state,
                        ]);
                    }
                    print!("{}", t.render(""));
                }
            }
        }
        Verb::Describe { transactional_id } => {
            let d = cluster
                .describe_transaction(&transactional_id)
                .await
                .map_err(|e| {
                    CliError::client(
                        format!("Failed to describe transaction state of transactional-id `{transactional_id}`"),
                        e,
                    )
                })?;
            let duration = d.start_time_ms.map(|s| now_ms().saturating_sub(s));
            match output {
                Output::Json => print_json(&json!({
                    "coordinator": d.coordinator,
                    "transactional_id": d.transactional_id,
                    "producer_id": d.producer_id,
                    "producer_epoch": d.producer_epoch,
                    "state": d.state,
                    "timeout_ms": d.timeout_ms,
                    "start_time_ms": d.start_time_ms,
                    "duration_ms": duration,
                    "partitions": d.partitions,
                })),
                Output::Table => {
                    let mut t = Table::new(&[
                        "CoordinatorId",
                        "TransactionalId",
                        "ProducerId",
                        "ProducerEpoch",
                        "TransactionState",
                        "TransactionTimeoutMs",
                        "CurrentTransactionStartTimeMs",
                        "TransactionDurationMs",
                        "TopicPartitions",
                    ]);
                    t.row(vec![
                        d.coordinator.to_string(),
                        d.transactional_id.clone(),
                        d.producer_id.to_string(),
                        d.producer_epoch.to_string(),
                        d.state.clone(),
                        d.timeout_ms.to_string(),
                        opt(d.start_time_ms),
                        opt(duration),
                        d.partitions
                            .iter()
                            .map(TopicPartition::to_string)
                            .collect::<Vec<_>>()
                            .join(","),
                    ]);
                    print!("{}", t.render(""));
                }
            }
        }
        Verb::DescribeProducers { topic, partition } => {
            let tp = TopicPartition::new(topic, partition);
            let fail = |e| {
                CliError::client(
                    format!("Failed to describe producers for partition {tp} on leader"),
                    e,
                )
            };
            let answers = cluster
                .describe_producers(std::slice::from_ref(&tp))
                .await
                .map_err(fail)?;
            let producers = match answers.into_iter().next() {
                Some((_, r)) => r.map_err(fail)?,
                None => Vec::new(),
            };
            match output {
                Output::Json => print_json(&json!({ "partition": tp, "producers": producers })),
                Output::Table => {
                    let mut t = Table::new(&[
                        "ProducerId",
                        "ProducerEpoch",
                        "LatestCoordinatorEpoch",
                        "LastSequence",
                        "LastTimestamp",
                        "CurrentTransactionStartOffset",
                    ]);
                    for p in producers {
                        t.row(vec![
                            p.producer_id.to_string(),
                            p.producer_epoch.to_string(),
                            p.coordinator_epoch.unwrap_or(-1).to_string(),
                            p.last_sequence.to_string(),
                            p.last_timestamp.to_string(),
                            opt(p.current_txn_start_offset),
                        ]);
                    }
                    print!("{}", t.render(""));
                }
            }
        }
        Verb::FindHanging {
            broker_id,
            topic,
            partition,
            max_transaction_timeout,
        } => {
            let scope = match (topic, broker_id) {
                (Some(t), _) => HangingScope::Topic(t, partition),
                (None, Some(b)) => HangingScope::Broker(b),
                (None, None) => return Err(usage("find-hanging needs --broker-id or --topic")),
            };
            let now = now_ms();
            let hanging = cluster
                .find_hanging_transactions(&scope, max_transaction_timeout * 60_000, now)
                .await
                .map_err(|e| CliError::client("Failed to find hanging transactions", e))?;
            match output {
                Output::Json => print_json(&json!({ "hanging": hanging })),
                Output::Table => {
                    let mut t = Table::new(&[
                        "Topic",
                        "Partition",
                        "ProducerId",
                        "ProducerEpoch",
                        "CoordinatorEpoch",
                        "StartOffset",
                        "LastTimestamp",
                        "Duration(min)",
                    ]);
                    for h in hanging {
                        let p = &h.producer;
                        t.row(vec![
                            h.partition.topic.clone(),
                            h.partition.partition.to_string(),
                            p.producer_id.to_string(),
                            p.producer_epoch.to_string(),
                            p.coordinator_epoch.unwrap_or(-1).to_string(),
                            p.current_txn_start_offset.unwrap_or(-1).to_string(),
                            p.last_timestamp.to_string(),
                            (now.saturating_sub(p.last_timestamp) / 60_000).to_string(),
                        ]);
                    }
                    print!("{}", t.render(""));
                }
            }
        }
        Verb::Abort {
            topic,
            partition,
            start_offset,
            producer_id,
            producer_epoch,
            coordinator_epoch,
            ..
        } => {
            let tp = TopicPartition::new(topic, partition);
            let spec = match (start_offset, producer_id, producer_epoch, coordinator_epoch) {
                (Some(offset), _, _, _) => cluster.abort_spec(&tp, offset).await.map_err(|e| {
                    CliError::client(format!("Failed to validate producer state for partition {tp}"), e)
                })?,
                (None, Some(producer_id), Some(producer_epoch), Some(coordinator_epoch)) => {
                    AbortSpec {
                        partition: tp.clone(),
                        producer_id,
                        producer_epoch,
                        // A producer that never had a marker shows -1: 0 is no larger than
                        // any leader epoch, as kafka-transactions.sh reasons.
                        coordinator_epoch: coordinator_epoch.max(0),
                    }
                }
                _ => return Err(usage("abort needs --start-offset or all of --producer-id, --producer-epoch, --coordinator-epoch")),
            };
            cluster.abort_transaction(&spec).await.map_err(|e| {
                CliError::client(format!("Failed to abort transaction {spec:?}"), e)
            })?;
            match output {
                Output::Json => print_json(&json!({ "aborted": spec })),
                Output::Table => println!(
                    "Aborted the transaction of producer {} (epoch {}) in {tp}",
                    spec.producer_id, spec.producer_epoch
                ),
            }
        }
    }
    Ok(())
}
