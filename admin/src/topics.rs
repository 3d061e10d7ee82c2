//! `rill topics`: list, describe, create, delete and alter topics, with kafka-topics.sh's
//! flag names.

use clap::{ArgGroup, Args};
use rill_client::{
    ClientError, Cluster, ConfigEntry, ConfigOp, ConfigSource, NewTopic, TopicMetadata,
};
use serde_json::{json, Value};

use crate::cli::{
    join_ids, parse_key_value, print_json, Change, CliError, ConnectArgs, Output, Table,
};

/// UNKNOWN_TOPIC_OR_PARTITION.
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

/// Arguments of `rill topics`.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("action").required(true)
    .args(["list", "describe", "create", "delete", "alter"])))]
pub struct TopicsArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// List topic names.
    #[arg(long)]
    list: bool,
    /// Describe partitions (leader, replicas, ISR) and config overrides, of --topic or all.
    #[arg(long)]
    describe: bool,
    /// Create --topic.
    #[arg(long)]
    create: bool,
    /// Delete --topic.
    #[arg(long)]
    delete: bool,
    /// Change --topic: add partitions (--partitions), set (--config) or remove
    /// (--delete-config) config overrides.
    #[arg(long)]
    alter: bool,
    /// The topic to act on.
    #[arg(long, value_name = "TOPIC")]
    topic: Option<String>,
    /// Partition count (--create: the initial count; --alter: the new, larger count).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
    partitions: Option<i32>,
    /// Replicas per partition (--create only).
    #[arg(long = "replication-factor", value_parser = clap::value_parser!(i16).range(1..))]
    replication_factor: Option<i16>,
    /// A topic config override, `KEY=VALUE` (repeatable; --create and --alter).
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    config: Vec<(String, String)>,
    /// A config override to remove (repeatable; --alter only).
    #[arg(long = "delete-config", value_name = "KEY")]
    delete_config: Vec<String>,
    /// Leave internal topics (`__consumer_offsets`, ...) out of --list and --describe.
    #[arg(long = "exclude-internal")]
    exclude_internal: bool,
}

impl TopicsArgs {
    /// The change this command attempts, if any (for the audit trail).
    pub fn change(&self) -> Option<Change> {
        let topic = self.topic.clone().unwrap_or_default();
        let action = if self.create {
            "create-topic"
        } else if self.delete {
            "delete-topic"
        } else if !self.alter {
            return None;
        } else if self.partitions.is_none() {
            "alter-config"
        } else if self.config.is_empty() && self.delete_config.is_empty() {
            "add-partitions"
        } else {
            "alter-topic"
        };
        Some(Change::new(action, topic, &self.connect))
    }
}

/// Runs `rill topics`.
pub async fn run(args: TopicsArgs) -> Result<(), CliError> {
    validate(&args)?;
    let cluster = args.connect.connect().await?;
    let out = args.connect.output;
    if args.list {
        list(&cluster, &args, out).await
    } else if args.describe {
        describe(&cluster, &args, out).await
    } else if args.create {
        create(&cluster, &args, out).await
    } else if args.delete {
        delete(&cluster, &args, out).await
    } else {
        alter(&cluster, &args, out).await
    }
}

fn validate(a: &TopicsArgs) -> Result<(), CliError> {
    let usage = |m: &str| Err(CliError::Usage(m.to_string()));
    if (a.create || a.delete || a.alter) && a.topic.is_none() {
        return usage("--topic is required with --create, --delete and --alter");
    }
    if a.replication_factor.is_some() && !a.create {
        return usage("--replication-factor is only valid with --create");
    }
    if a.partitions.is_some() && !(a.create || a.alter) {
        return usage("--partitions is only valid with --create and --alter");
    }
    if !(a.config.is_empty() || a.create || a.alter) {
        return usage("--config is only valid with --create and --alter");
    }
    if !a.delete_config.is_empty() && !a.alter {
        return usage("--delete-config is only valid with --alter");
    }
    if a.alter && a.partitions.is_none() && a.config.is_empty() && a.delete_config.is_empty() {
        return usage("--alter needs --partitions, --config or --delete-config");
    }
    if a.exclude_internal && !(a.list || a.describe) {
        return usage("--exclude-internal is only valid with --list and --describe");
    }
    Ok(())
}

/// The topic named by --topic (validated to be present).
fn topic(a: &TopicsArgs) -> Result<&str, CliError> {
    a.topic
        .as_deref()
        .ok_or_else(|| CliError::Usage("--topic is required".into()))
}

async fn list(cluster: &Cluster, a: &TopicsArgs, out: Output) -> Result<(), CliError> {
    let topics = cluster
        .list_topics()
        .await
        .map_err(|e| CliError::client("listing topics failed", e))?;
    let names: Vec<&str> = topics
        .iter()
        .filter(|t| !(a.exclude_internal && t.is_internal))
        .map(|t| t.name.as_str())
        .collect();
    match out {
        Output::Json => print_json(&json!(names)),
        Output::Table => {
            for n in names {
                println!("{n}");
            }
        }
    }
    Ok(())
}

async fn describe(cluster: &Cluster, a: &TopicsArgs, out: Output) -> Result<(), CliError> {
    let topics: Vec<TopicMetadata> = match &a.topic {
        Some(t) => {
            let found = cluster
                .describe_topics(std::slice::from_ref(t))
                .await
                .map_err(|e| CliError::client("describing topics failed", e))?;
            for t in &found {
                t.error().map_err(|e| not_found(&t.name, e))?;
            }
            found
        }
        None => cluster
            .list_topics()
            .await
            .map_err(|e| CliError::client("listing topics failed", e))?
            .into_iter()
            .filter(|t| !(a.exclude_internal && t.is_internal))
            .collect(),
    };
    let names: Vec<String> = topics.iter().map(|t| t.name.clone()).collect();
    let configs = if names.is_empty() {
        Vec::new()
    } else {
        cluster
            .describe_topics_configs(&names)
            .await
            .map_err(|e| CliError::client("describing topic configs failed", e))?
    };
    let mut described = Vec::new();
    for (t, (_, c)) in topics.into_iter().zip(configs) {
        let c = c.map_err(|e| {
            CliError::client(format!("describing configs of '{}' failed", t.name), e)
        })?;
        described.push((t, c));
    }
    match out {
        Output::Json => print_json(&Value::Array(
            described.iter().map(|(t, c)| topic_json(t, c)).collect(),
        )),
        Output::Table => {
            for (i, (t, configs)) in described.iter().enumerate() {
                if i > 0 {
                    println!();
                }
                print!("{}", topic_table(t, configs));
            }
        }
    }
    Ok(())
}

/// Config overrides set on the topic itself, as kafka-topics.sh shows them.
fn overrides(configs: &[ConfigEntry]) -> Vec<(&str, String)> {
    configs
        .iter()
        .filter(|c| c.source == ConfigSource::DynamicTopic)
        .map(|c| {
            let v = if c.sensitive {
                "(sensitive)".to_string()
            } else {
                c.value.clone().unwrap_or_default()
            };
            (c.name.as_str(), v)
        })
        .collect()
}

fn topic_table(t: &TopicMetadata, configs: &[ConfigEntry]) -> String {
    let cfg = overrides(configs)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut s = format!(
        "Topic: {}  TopicId: {}  PartitionCount: {}  ReplicationFactor: {}  Configs: {}\n",
        t.name,
        t.topic_id,
        t.partitions.len(),
        t.replication_factor(),
        cfg
    );
    let mut table = Table::new(&["PARTITION", "LEADER", "REPLICAS", "ISR", "OFFLINE"]);
    for p in &t.partitions {
        table.row(vec![
            p.partition.to_string(),
            if p.leader < 0 {
                "none".to_string()
            } else {
                p.leader.to_string()
            },
            join_ids(&p.replicas),
            join_ids(&p.isr),
            join_ids(&p.offline_replicas),
        ]);
    }
    s.push_str(&table.render("  "));
    s
}

fn topic_json(t: &TopicMetadata, configs: &[ConfigEntry]) -> Value {
    let cfg: serde_json::Map<String, Value> = overrides(configs)
        .into_iter()
        .map(|(k, v)| (k.to_string(), Value::String(v)))
        .collect();
    json!({
        "name": t.name,
        "topic_id": t.topic_id.to_string(),
        "internal": t.is_internal,
        "partition_count": t.partitions.len(),
        "replication_factor": t.replication_factor(),
        "configs": cfg,
        "partitions": t.partitions.iter().map(|p| json!({
            "partition": p.partition,
            "leader": if p.leader < 0 { Value::Null } else { json!(p.leader) },
            "leader_epoch": p.leader_epoch,
            "replicas": p.replicas,
            "isr": p.isr,
            "offline_replicas": p.offline_replicas,
        })).collect::<Vec<_>>(),
    })
}

async fn create(cluster: &Cluster, a: &TopicsArgs, out: Output) -> Result<(), CliError> {
    let name = topic(a)?;
    let new = NewTopic {
        name: name.to_string(),
        partitions: a.partitions,
        replication_factor: a.replication_factor,
        configs: a.config.clone(),
    };
    let results = cluster
        .create_topics(std::slice::from_ref(&new))
        .await
        .map_err(|e| CliError::client(format!("creating topic '{name}' failed"), e))?;
    for (_, r) in results {
        r.map_err(|e| CliError::client(format!("creating topic '{name}' failed"), e))?;
    }
    done(out, "created", name, &format!("Created topic {name}."));
    Ok(())
}

async fn delete(cluster: &Cluster, a: &TopicsArgs, out: Output) -> Result<(), CliError> {
    let name = topic(a)?;
    let results = cluster
        .delete_topics(&[name.to_string()])
        .await
        .map_err(|e| CliError::client(format!("deleting topic '{name}' failed"), e))?;
    for (_, r) in results {
        r.map_err(|e| {
            if is_unknown_topic(&e) {
                not_found(name, e)
            } else {
                CliError::client(format!("deleting topic '{name}' failed"), e)
            }
        })?;
    }
    done(out, "deleted", name, &format!("Deleted topic {name}."));
    Ok(())
}

async fn alter(cluster: &Cluster, a: &TopicsArgs, out: Output) -> Result<(), CliError> {
    let name = topic(a)?;
    // Check the topic exists first, so a typo does not read as a config or partition error.
    let md = cluster
        .describe_topics(&[name.to_string()])
        .await
        .map_err(|e| CliError::client(format!("altering topic '{name}' failed"), e))?;
    for t in &md {
        t.error().map_err(|e| not_found(name, e))?;
    }
    let ops: Vec<ConfigOp> = a
        .config
        .iter()
        .map(|(k, v)| ConfigOp::Set(k.clone(), v.clone()))
        .chain(a.delete_config.iter().map(|k| ConfigOp::Delete(k.clone())))
        .collect();
    if let Some(n) = a.partitions {
        let current = md.first().map_or(0, |t| t.partitions.len());
        if usize::try_from(n).is_ok_and(|n| n <= current) {
            return Err(CliError::Failed(format!(
                "topic '{name}' has {current} partitions; --partitions must be larger to add some"
            )));
        }
    }
    // Validate every change before applying any, so a bad value leaves the topic as it was.
    let mut changes = Vec::new();
    for validate_only in [true, false] {
        if !ops.is_empty() {
            cluster
                .alter_topic_configs(name, &ops, validate_only)
                .await
                .map_err(|e| {
                    CliError::client(format!("altering configs of topic '{name}' failed"), e)
                })?;
            if !validate_only {
                changes.push("configs");
            }
        }
        if let Some(n) = a.partitions {
            cluster
                .create_partitions(name, n, validate_only)
                .await
                .map_err(|e| {
                    CliError::client(format!("adding partitions to topic '{name}' failed"), e)
                })?;
            if !validate_only {
                changes.push("partitions");
            }
        }
    }
    done(
        out,
        "altered",
        name,
        &format!("Altered topic {name} ({}).", changes.join(", ")),
    );
    Ok(())
}

fn is_unknown_topic(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::Kafka {
            code: UNKNOWN_TOPIC_OR_PARTITION,
            ..
        }
    )
}

fn not_found(name: &str, e: ClientError) -> CliError {
    if is_unknown_topic(&e) {
        CliError::Failed(format!("Topic '{name}' does not exist."))
    } else {
        CliError::client(format!("topic '{name}'"), e)
    }
}

fn done(out: Output, what: &str, name: &str, message: &str) {
    match out {
        Output::Json => print_json(&json!({ "result": what, "topic": name })),
        Output::Table => println!("{message}"),
    }
}
