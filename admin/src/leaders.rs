//! `rill leaders`: preferred and unclean leader elections with kafka-leader-election.sh's
//! flags (`--election-type PREFERRED|UNCLEAN`, `--topic`, `--partition`,
//! `--all-topic-partitions`), plus `--preferred`/`--unclean` shorthands, and `--describe`:
//! each partition's leader against its preferred replica.

use clap::{ArgGroup, Args, ValueEnum};
use rill_client::{ClientError, Cluster, ElectionKind, TopicMetadata, TopicPartition};
use serde_json::{json, Value};

use crate::cli::{join_ids, print_json, Change, CliError, ConnectArgs, Output, Table};

/// ELECTION_NOT_NEEDED: the partition already has the leader asked for.
const ELECTION_NOT_NEEDED: i16 = 84;
/// UNKNOWN_TOPIC_OR_PARTITION.
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

/// `--election-type`.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
#[value(rename_all = "UPPER")]
pub enum ElectionTypeArg {
    /// The preferred (first) replica leads, if it is in sync.
    Preferred,
    /// A leaderless partition gets any live replica (may lose acknowledged records).
    Unclean,
}

/// Arguments of `rill leaders`.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("action").required(true).args(["elect", "describe"])))]
pub struct LeadersArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Run a leader election (with --preferred, --unclean or --election-type).
    #[arg(long)]
    elect: bool,
    /// Show each partition's leader and preferred leader, of --topic or all topics.
    #[arg(long)]
    describe: bool,
    /// Preferred election: move leadership back to the first replica.
    #[arg(long, conflicts_with_all = ["unclean", "election_type"])]
    preferred: bool,
    /// Unclean election: give leaderless partitions any live replica.
    #[arg(long, conflicts_with = "election_type")]
    unclean: bool,
    /// The election type, as kafka-leader-election.sh takes it.
    #[arg(long = "election-type", value_enum, ignore_case = true)]
    election_type: Option<ElectionTypeArg>,
    /// The topic to act on (every partition of it unless --partition).
    #[arg(long, value_name = "TOPIC")]
    topic: Option<String>,
    /// One partition of --topic.
    #[arg(long, requires = "topic", value_parser = clap::value_parser!(i32).range(0..))]
    partition: Option<i32>,
    /// Elect for every partition of the cluster.
    #[arg(long = "all-topic-partitions", conflicts_with_all = ["topic", "partition"])]
    all_topic_partitions: bool,
    /// Elect for the partitions listed in a JSON file, kafka-leader-election.sh's format:
    /// `{"partitions": [{"topic": "t", "partition": 0}, ...]}`.
    #[arg(long = "path-to-json-file", value_name = "FILE",
          conflicts_with_all = ["topic", "partition", "all_topic_partitions"])]
    path_to_json_file: Option<std::path::PathBuf>,
}

impl LeadersArgs {
    /// The change this command attempts, if any (for the audit trail).
    pub fn change(&self) -> Option<Change> {
        if self.describe {
            return None;
        }
        let target = self.topic.clone().unwrap_or_else(|| "cluster".to_string());
        Some(Change::new("elect-leaders", target, &self.connect))
    }
}

/// Runs `rill leaders`.
pub async fn run(args: LeadersArgs) -> Result<(), CliError> {
    let kind = validate(&args)?;
    let cluster = args.connect.connect().await?;
    match kind {
        Some(kind) => elect(&cluster, &args, kind).await,
        None => describe(&cluster, &args).await,
    }
}

/// Checks flag combinations; the election kind for --elect.
fn validate(a: &LeadersArgs) -> Result<Option<ElectionKind>, CliError> {
    let usage = |m: &str| Err(CliError::Usage(m.to_string()));
    let kind = match (a.preferred, a.unclean, a.election_type) {
        (true, _, _) | (_, _, Some(ElectionTypeArg::Preferred)) => Some(ElectionKind::Preferred),
        (_, true, _) | (_, _, Some(ElectionTypeArg::Unclean)) => Some(ElectionKind::Unclean),
        _ => None,
    };
    if a.describe {
        if kind.is_some() || a.all_topic_partitions || a.path_to_json_file.is_some() {
            return usage("--describe takes no election flags");
        }
        return Ok(None);
    }
    let Some(kind) = kind else {
        return usage("--elect needs --preferred, --unclean or --election-type PREFERRED|UNCLEAN");
    };
    if a.topic.is_none() && !a.all_topic_partitions && a.path_to_json_file.is_none() {
        return usage(
            "--elect needs --topic [--partition], --path-to-json-file or --all-topic-partitions",
        );
    }
    Ok(Some(kind))
}

async fn elect(cluster: &Cluster, a: &LeadersArgs, kind: ElectionKind) -> Result<(), CliError> {
    let targets: Option<Vec<TopicPartition>> = match (&a.topic, a.partition) {
        (Some(t), Some(p)) => Some(vec![TopicPartition::new(t.clone(), p)]),
        (Some(t), None) => {
            let md = topic_metadata(cluster, t).await?;
            Some(
                md.partitions
                    .iter()
                    .map(|p| TopicPartition::new(t.clone(), p.partition))
                    .collect(),
            )
        }
        (None, _) => match &a.path_to_json_file {
            Some(path) => Some(read_partitions_file(path)?),
            None => None,
        },
    };
    let results = cluster
        .elect_leaders(kind, targets.as_deref())
        .await
        .map_err(|e| CliError::client(format!("{} leader election failed", kind.name()), e))?;
    let mut elected = Vec::new();
    let mut not_needed = Vec::new();
    let mut failed = Vec::new();
    for (tp, r) in results {
        match r {
            Ok(()) => elected.push(tp),
            Err(ClientError::Kafka {
                code: ELECTION_NOT_NEEDED,
                ..
            }) => not_needed.push(tp),
            Err(e) => failed.push((tp, e)),
        }
    }
    let names = |v: &[TopicPartition]| v.iter().map(|tp| tp.to_string()).collect::<Vec<_>>();
    match a.connect.output {
        Output::Json => print_json(&json!({
            "election_type": kind.name(),
            "elected": names(&elected),
            "not_needed": names(&not_needed),
            "failed": failed.iter().map(|(tp, e)| json!({
                "partition": tp.to_string(),
                "error": e.to_string(),
            })).collect::<Vec<_>>(),
        })),
        Output::Table => {
            if !elected.is_empty() {
                println!(
                    "Successfully completed leader election ({}) for partitions {}",
                    kind.name(),
                    names(&elected).join(", ")
                );
            }
            if !not_needed.is_empty() {
                println!(
                    "Valid replica already elected for partitions {}",
                    names(&not_needed).join(", ")
                );
            }
            if elected.is_empty() && not_needed.is_empty() && failed.is_empty() {
                println!("No partition needed a leader election.");
            }
            for (tp, e) in &failed {
                eprintln!(
                    "Error completing leader election ({}) for partition: {tp}: {e}",
                    kind.name()
                );
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "{} replica(s) could not be elected",
            failed.len()
        )))
    }
}

/// Reads kafka-leader-election.sh's JSON file of partitions.
fn read_partitions_file(path: &std::path::Path) -> Result<Vec<TopicPartition>, CliError> {
    let bad =
        |why: String| CliError::Usage(format!("--path-to-json-file {}: {why}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let list = v["partitions"]
        .as_array()
        .ok_or_else(|| bad("expected {\"partitions\": [...]}".into()))?;
    let mut out = Vec::new();
    for p in list {
        let topic = p["topic"].as_str();
        let partition = p["partition"].as_i64().and_then(|n| i32::try_from(n).ok());
        match (topic, partition) {
            (Some(t), Some(n)) if n >= 0 => out.push(TopicPartition::new(t, n)),
            _ => {
                return Err(bad(format!(
                    "each entry needs a topic and a partition: {p}"
                )))
            }
        }
    }
    if out.is_empty() {
        return Err(bad("no partitions listed".into()));
    }
    Ok(out)
}

async fn topic_metadata(cluster: &Cluster, name: &str) -> Result<TopicMetadata, CliError> {
    let md = cluster
        .describe_topics(&[name.to_string()])
        .await
        .map_err(|e| CliError::client(format!("describing topic '{name}' failed"), e))?;
    let t = md
        .into_iter()
        .next()
        .ok_or_else(|| CliError::Failed(format!("Topic '{name}' does not exist.")))?;
    t.error().map_err(|e| match e {
        ClientError::Kafka {
            code: UNKNOWN_TOPIC_OR_PARTITION,
            ..
        } => CliError::Failed(format!("Topic '{name}' does not exist.")),
        e => CliError::client(format!("topic '{name}'"), e),
    })?;
    Ok(t)
}

async fn describe(cluster: &Cluster, a: &LeadersArgs) -> Result<(), CliError> {
    let topics = match &a.topic {
        Some(t) => vec![topic_metadata(cluster, t).await?],
        None => cluster
            .list_topics()
            .await
            .map_err(|e| CliError::client("listing topics failed", e))?,
    };
    let mut rows = Vec::new();
    for t in &topics {
        for p in &t.partitions {
            if a.partition.is_some_and(|want| want != p.partition) {
                continue;
            }
            let preferred = p.replicas.first().copied().unwrap_or(-1);
            rows.push((t.name.as_str(), p, preferred));
        }
    }
    match a.connect.output {
        Output::Json => print_json(&Value::Array(
            rows.iter()
                .map(|(t, p, preferred)| {
                    json!({
                        "topic": t,
                        "partition": p.partition,
                        "leader": if p.leader < 0 { Value::Null } else { json!(p.leader) },
                        "preferred_leader": preferred,
                        "is_preferred": p.leader == *preferred,
                        "replicas": p.replicas,
                        "isr": p.isr,
                    })
                })
                .collect(),
        )),
        Output::Table => {
            let mut table = Table::new(&[
                "TOPIC",
                "PARTITION",
                "LEADER",
                "PREFERRED",
                "IS-PREFERRED",
                "REPLICAS",
                "ISR",
            ]);
            let mut off = 0;
            for (t, p, preferred) in &rows {
                let is_preferred = p.leader == *preferred;
                off += usize::from(!is_preferred);
                table.row(vec![
                    t.to_string(),
                    p.partition.to_string(),
                    if p.leader < 0 {
                        "none".into()
                    } else {
                        p.leader.to_string()
                    },
                    preferred.to_string(),
                    if is_preferred { "yes" } else { "no" }.into(),
                    join_ids(&p.replicas),
                    join_ids(&p.isr),
                ]);
            }
            print!("{}", table.render(""));
            println!(
                "{off} of {} partitions are not led by their preferred replica.",
                rows.len()
            );
        }
    }
    Ok(())
}
