//! `rill reassign`: partition reassignment with kafka-reassign-partitions.sh's flags.
//!
//! - `--generate --topics t1,t2 --broker-list 1,2,3`: the current assignment and a balanced
//!   (rack-aware) proposal, both in Kafka's plan JSON.
//! - `--execute --reassignment-json-file PLAN [--throttle BYTES/s] [--wait] [--additional]`:
//!   refuses partitions already reassigning unless `--additional`, sets the
//!   replication throttles as Kafka's tool does (rates on every broker involved; the
//!   existing replicas as leader-throttled, the moving ones as follower-throttled), starts the
//!   reassignments, and with `--wait` shows the copy progress until they are done (then
//!   clears the throttles, as `--verify` would).
//! - `--verify`: each partition complete or still in progress; once all are complete, the
//!   throttles are removed (Kafka's behaviour).
//! - `--cancel`: cancels the plan's reassignments and removes the throttles.
//! - `--list`: the reassignments in progress.
//!
//! Progress comes from the brokers through the Kafka protocol: each adding replica's size
//! (DescribeLogDirs on its broker) against the leader's.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{ArgGroup, Args};
use rill_client::{ClientError, Cluster, OngoingReassignment, TopicPartition};
use serde_json::{json, Value};

use crate::cli::{join_ids, print_json, Change, CliError, ConnectArgs, Output};
use crate::ops::reassign::plan::{self, Move, Plan};
use crate::ops::reassign::progress::{sizes, Sample};
use crate::ops::reassign::{clear_throttles, set_throttles, states, topics_of};

/// Arguments of `rill reassign`.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("action").required(true)
    .args(["generate", "execute", "verify", "cancel", "list"])))]
pub struct ReassignArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Propose a balanced assignment of --topics over --broker-list.
    #[arg(long)]
    generate: bool,
    /// Start the reassignment in --reassignment-json-file.
    #[arg(long)]
    execute: bool,
    /// Report whether the reassignments in --reassignment-json-file are done; removes the
    /// throttles once they all are.
    #[arg(long)]
    verify: bool,
    /// Cancel the reassignments in --reassignment-json-file (back to the original replicas).
    #[arg(long)]
    cancel: bool,
    /// List the reassignments in progress.
    #[arg(long)]
    list: bool,
    /// Topics to place (--generate), comma-separated.
    #[arg(long, value_name = "TOPIC[,TOPIC...]", value_delimiter = ',')]
    topics: Vec<String>,
    /// Brokers to place them on (--generate), comma-separated ids.
    #[arg(long = "broker-list", value_name = "ID[,ID...]", value_delimiter = ',')]
    broker_list: Vec<i32>,
    /// Ignore brokers' racks when generating.
    #[arg(long = "disable-rack-aware")]
    disable_rack_aware: bool,
    /// The plan: `{"version":1,"partitions":[{"topic":..,"partition":..,"replicas":[..]}]}`.
    #[arg(long = "reassignment-json-file", value_name = "PLAN.json")]
    reassignment_json_file: Option<PathBuf>,
    /// Replication throttle for the move, bytes/s (--execute).
    #[arg(long, value_name = "BYTES_PER_SEC", value_parser = clap::value_parser!(u64).range(1..))]
    throttle: Option<u64>,
    /// Start even though some of the plan's partitions are already being reassigned (their
    /// targets are replaced), as Kafka's tool requires.
    #[arg(long)]
    additional: bool,
    /// Keep the throttles when cancelling.
    #[arg(long = "preserve-throttles")]
    preserve_throttles: bool,
    /// Wait for the reassignment to finish, showing bytes copied, remaining and the ETA per
    /// partition (--execute, --verify).
    #[arg(long, alias = "progress")]
    wait: bool,
    /// Give up waiting after this many seconds (exit 1).
    #[arg(long = "wait-timeout", value_name = "SECS", default_value_t = 3600)]
    wait_timeout: u64,
}

/// Runs `rill reassign`.
impl ReassignArgs {
    /// The change this command attempts, if any (for the audit trail).
    pub fn change(&self) -> Option<Change> {
        let action = if self.execute {
            "reassign-execute"
        } else if self.cancel {
            "reassign-cancel"
        } else {
            return None;
        };
        Some(Change::new(action, "cluster", &self.connect))
    }
}

pub async fn run(args: ReassignArgs) -> Result<(), CliError> {
    let usage = |m: &str| Err(CliError::Usage(m.to_string()));
    if args.generate && (args.topics.is_empty() || args.broker_list.is_empty()) {
        return usage("--generate needs --topics and --broker-list");
    }
    let needs_plan = args.execute || args.verify || args.cancel;
    if needs_plan && args.reassignment_json_file.is_none() {
        return usage("--execute, --verify and --cancel need --reassignment-json-file");
    }
    if args.throttle.is_some() && !args.execute {
        return usage("--throttle goes with --execute");
    }
    if args.additional && !args.execute {
        return usage("--additional goes with --execute");
    }
    if args.wait && !(args.execute || args.verify) {
        return usage("--wait goes with --execute or --verify");
    }
    let plan = match &args.reassignment_json_file {
        Some(path) if needs_plan => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
            Some(plan::parse(&text, &path.display().to_string())?)
        }
        _ => None,
    };
    let cluster = args.connect.connect().await?;
    let out = args.connect.output;
    match plan {
        None if args.generate => generate(&cluster, &args, out).await,
        None => list(&cluster, out).await,
        Some(plan) => {
            let md = cluster.metadata(Some(&topics_of(&plan))).await?;
            let brokers: Vec<_> = cluster.brokers();
            if args.execute {
                plan::check(&plan, &md.topics, &brokers)?;
                execute(&cluster, &args, &plan, &md.topics, out).await?;
                if args.wait {
                    wait(&cluster, &args, &plan).await?;
                    clear_throttles(&cluster, &plan).await?;
                }
                Ok(())
            } else if args.verify {
                if args.wait {
                    wait(&cluster, &args, &plan).await?;
                }
                verify(&cluster, &plan, out).await
            } else {
                cancel(&cluster, &args, &plan, out).await
            }
        }
    }
}

async fn generate(cluster: &Cluster, args: &ReassignArgs, out: Output) -> Result<(), CliError> {
    let md = cluster.metadata(Some(&args.topics)).await?;
    for t in &md.topics {
        t.error()?;
    }
    let brokers: Vec<_> = cluster.brokers();
    let current = plan::current_plan(&md.topics);
    let proposed = plan::generate(
        &md.topics,
        &brokers,
        &args.broker_list,
        !args.disable_rack_aware,
    )?;
    let (cur, prop) = (plan::to_json(&current), plan::to_json(&proposed));
    match out {
        Output::Json => print_json(&json!({"current": cur, "proposed": prop})),
        Output::Table => {
            println!("Current partition replica assignment\n{cur}\n");
            println!("Proposed partition reassignment configuration\n{prop}");
        }
    }
    Ok(())
}

async fn list(cluster: &Cluster, out: Output) -> Result<(), CliError> {
    let ongoing = cluster.list_partition_reassignments(None).await?;
    match out {
        Output::Json => print_json(&Value::Array(ongoing.iter().map(ongoing_json).collect())),
        Output::Table if ongoing.is_empty() => println!("No partition reassignments found."),
        Output::Table => {
            println!("Current partition reassignments:");
            for r in &ongoing {
                println!(
                    "{}: replicas: {}. adding: {}. removing: {}.",
                    r.partition,
                    join_ids(&r.replicas),
                    join_ids(&r.adding),
                    join_ids(&r.removing)
                );
            }
        }
    }
    Ok(())
}

fn ongoing_json(r: &OngoingReassignment) -> Value {
    json!({
        "topic": r.partition.topic, "partition": r.partition.partition,
        "replicas": r.replicas, "adding": r.adding, "removing": r.removing,
    })
}

async fn execute(
    cluster: &Cluster,
    args: &ReassignArgs,
    plan: &Plan,
    topics: &[rill_client::TopicMetadata],
    out: Output,
) -> Result<(), CliError> {
    let tps: Vec<TopicPartition> = plan.iter().map(|m| m.tp.clone()).collect();
    let ongoing = cluster.list_partition_reassignments(Some(&tps)).await?;
    if !ongoing.is_empty() && !args.additional {
        let names: Vec<String> = ongoing.iter().map(|o| o.partition.to_string()).collect();
        return Err(CliError::Failed(format!(
            "Cannot execute because there is an existing partition reassignment ({}). Use \
             --additional to override this and create a new partition reassignment in \
             addition to the existing one.",
            names.join(", ")
        )));
    }
    let current: Vec<Move> = plan
        .iter()
        .filter_map(|m| {
            plan::current(topics, &m.tp).map(|replicas| Move {
                tp: m.tp.clone(),
                replicas,
            })
        })
        .collect();
    if out == Output::Table {
        println!(
            "Current partition replica assignment\n\n{}\n\nSave this to use as the \
             --reassignment-json-file option during rollback",
            plan::to_json(&current)
        );
    }
    if let Some(rate) = args.throttle {
        set_throttles(cluster, plan, &current, rate).await?;
        if out == Output::Table {
            println!("Warning: You must run --verify periodically, until the reassignment completes, to ensure the throttle is removed.");
            println!("The inter-broker throttle limit was set to {rate} B/s");
        }
    }
    let changes: Vec<(TopicPartition, Option<Vec<i32>>)> = plan
        .iter()
        .map(|m| (m.tp.clone(), Some(m.replicas.clone())))
        .collect();
    let results = cluster.alter_partition_reassignments(&changes).await?;
    report(&results, ("start", "started"), out)
}

/// Prints per-partition results; fails (exit 1) if any partition failed.
fn report(
    results: &[(TopicPartition, Result<(), ClientError>)],
    (what, done): (&str, &str),
    out: Output,
) -> Result<(), CliError> {
    let failed: Vec<String> = results
        .iter()
        .filter_map(|(tp, r)| r.as_ref().err().map(|e| format!("{tp}: {e}")))
        .collect();
    let ok: Vec<String> = results
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(tp, _)| tp.to_string())
        .collect();
    match out {
        Output::Json => print_json(&json!({"succeeded": ok, "failed": failed})),
        Output::Table if !ok.is_empty() => {
            println!(
                "Successfully {done} partition reassignments for {}",
                ok.join(",")
            )
        }
        Output::Table => {}
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "could not {what} the reassignment of {} partition(s):\n  {}",
            failed.len(),
            failed.join("\n  ")
        )))
    }
}

/// Clears the throttles and says so on stderr (the CLI's `--verify` output).
async fn clear_throttles_cli(cluster: &Cluster, plan: &Plan) -> Result<(), CliError> {
    let ids = clear_throttles(cluster, plan).await?;
    eprintln!(
        "Clearing broker-level throttles on brokers {}",
        join_ids(&ids)
    );
    eprintln!(
        "Clearing topic-level throttles on topics {}",
        topics_of(plan).join(",")
    );
    Ok(())
}

async fn verify(cluster: &Cluster, plan: &Plan, out: Output) -> Result<(), CliError> {
    let states = states(cluster, plan).await?;
    match out {
        Output::Json => print_json(&Value::Array(
            states
                .iter()
                .map(|(m, s)| json!({"topic": m.tp.topic, "partition": m.tp.partition, "state": s}))
                .collect(),
        )),
        Output::Table => {
            println!("Status of partition reassignment:");
            for (m, s) in &states {
                match s.as_str() {
                    "complete" => println!("Reassignment of partition {} is completed.", m.tp),
                    "in progress" => {
                        println!("Reassignment of partition {} is still in progress.", m.tp)
                    }
                    other => println!(
                        "There is no active reassignment of partition {}, but {other} [{}].",
                        m.tp,
                        join_ids(&m.replicas)
                    ),
                }
            }
        }
    }
    if states.iter().all(|(_, s)| s == "complete") {
        clear_throttles_cli(cluster, plan).await?;
    }
    Ok(())
}

async fn cancel(
    cluster: &Cluster,
    args: &ReassignArgs,
    plan: &Plan,
    out: Output,
) -> Result<(), CliError> {
    let changes: Vec<(TopicPartition, Option<Vec<i32>>)> =
        plan.iter().map(|m| (m.tp.clone(), None)).collect();
    let results = cluster.alter_partition_reassignments(&changes).await?;
    let r = report(&results, ("cancel", "cancelled"), out);
    if !args.preserve_throttles {
        clear_throttles_cli(cluster, plan).await?;
    }
    r
}

/// Waits until none of the plan's partitions is reassigning, printing each adding replica's
/// progress (bytes copied of the leader's size, rate, ETA) about once a second.
async fn wait(cluster: &Cluster, args: &ReassignArgs, plan: &Plan) -> Result<(), CliError> {
    let tps: Vec<TopicPartition> = plan.iter().map(|m| m.tp.clone()).collect();
    let deadline = Instant::now() + Duration::from_secs(args.wait_timeout);
    let mut first: BTreeMap<(TopicPartition, i32), (Instant, i64)> = BTreeMap::new();
    loop {
        let ongoing = cluster.list_partition_reassignments(Some(&tps)).await?;
        if ongoing.is_empty() {
            eprintln!("All partition reassignments are complete.");
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(CliError::Failed(format!(
                "{} partition reassignment(s) still in progress after {} s",
                ongoing.len(),
                args.wait_timeout
            )));
        }
        for (tp, a, s) in sizes(cluster, &ongoing).await? {
            let key = (tp.clone(), a);
            let (t0, c0) = *first.entry(key).or_insert((Instant::now(), s.copied));
            let secs = t0.elapsed().as_secs_f64();
            let rate = (secs >= 0.5).then(|| (s.copied - c0).max(0) as f64 / secs);
            eprintln!("{}", progress_line(&tp, a, &s, rate));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `t-0 -> 3 [#######.............]  35%  1.2 MB of 3.4 MB, 2.2 MB left, 300 kB/s, ETA 7s`
fn progress_line(tp: &TopicPartition, replica: i32, s: &Sample, rate: Option<f64>) -> String {
    const WIDTH: usize = 20;
    let frac = if s.total > 0 {
        (s.copied as f64 / s.total as f64).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let filled = (frac * WIDTH as f64).round() as usize;
    let bar: String = "#".repeat(filled) + &".".repeat(WIDTH - filled);
    let left = (s.total - s.copied).max(0);
    let speed = rate.map_or("-".to_string(), |r| format!("{}/s", bytes(r as i64)));
    let eta = match rate {
        Some(r) if r > 0.0 => format!("{:.0}s", left as f64 / r),
        _ => "-".to_string(),
    };
    format!(
        "{tp} -> {replica} [{bar}] {:>3.0}%  {} of {}, {} left, {speed}, ETA {eta}",
        frac * 100.0,
        bytes(s.copied),
        bytes(s.total),
        bytes(left)
    )
}

fn bytes(n: i64) -> String {
    let n = n.max(0) as f64;
    if n >= 1e9 {
        format!("{:.1} GB", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1} MB", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1} kB", n / 1e3)
    } else {
        format!("{n:.0} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_read_well() {
        let s = Sample {
            copied: 1_200_000,
            total: 3_400_000,
        };
        let l = progress_line(&TopicPartition::new("t", 0), 3, &s, Some(300_000.0));
        assert!(l.starts_with("t-0 -> 3 [#######............."), "{l}");
        assert!(
            l.contains("35%") && l.contains("1.2 MB of 3.4 MB") && l.contains("ETA 7s"),
            "{l}"
        );
        let none = progress_line(
            &TopicPartition::new("t", 0),
            3,
            &Sample {
                copied: 0,
                total: 0,
            },
            None,
        );
        assert!(none.contains("ETA -"), "{none}");
    }
}
