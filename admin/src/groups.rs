//! `rill groups`: list, describe (members, committed offsets, lag), reset offsets and delete
//! consumer groups, with kafka-consumer-groups.sh's flag names.

use std::collections::{BTreeMap, BTreeSet};

use clap::{ArgGroup, Args};
use rill_client::{ClientError, Cluster, GroupDescription, OffsetSpec, TopicPartition};
use serde_json::{json, Value};

use crate::cli::{parse_datetime, print_json, Change, CliError, ConnectArgs, Output, Table};
use crate::ops::lag::{partition_lag, Lag, LagBasis};
use crate::ops::reset::{self, ResetError, Scenario};

/// GROUP_ID_NOT_FOUND.
const GROUP_ID_NOT_FOUND: i16 = 69;
/// NON_EMPTY_GROUP.
const NON_EMPTY_GROUP: i16 = 68;
/// UNKNOWN_TOPIC_OR_PARTITION.
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

/// Arguments of `rill groups`.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("action").required(true)
    .args(["list", "describe", "reset_offsets", "delete"])))]
#[command(group(ArgGroup::new("scenario")
    .args(["to_earliest", "to_latest", "to_offset", "to_datetime", "shift_by"])))]
pub struct GroupsArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// List every consumer group with its state.
    #[arg(long)]
    list: bool,
    /// Describe --group: state, members, and per partition the committed offset, log end
    /// offset and lag.
    #[arg(long)]
    describe: bool,
    /// Reset --group's committed offsets for --topic (or --all-topics) to one scenario;
    /// prints the plan, and applies it only with --execute. The group must have no active
    /// members.
    #[arg(long = "reset-offsets")]
    reset_offsets: bool,
    /// Delete --group (it must have no active members).
    #[arg(long)]
    delete: bool,
    /// The group to act on.
    #[arg(long, value_name = "GROUP")]
    group: Option<String>,
    /// Topic to reset, optionally with partitions: `TOPIC` or `TOPIC:0,2` (repeatable).
    #[arg(long, value_name = "TOPIC[:P,...]")]
    topic: Vec<String>,
    /// Reset every topic the group has committed offsets for.
    #[arg(long = "all-topics", conflicts_with = "topic")]
    all_topics: bool,
    /// Scenario: the log start offset.
    #[arg(long = "to-earliest")]
    to_earliest: bool,
    /// Scenario: the log end offset.
    #[arg(long = "to-latest")]
    to_latest: bool,
    /// Scenario: this offset (clamped into the partition's earliest..latest range).
    #[arg(
        long = "to-offset",
        value_name = "OFFSET",
        allow_negative_numbers = true
    )]
    to_offset: Option<i64>,
    /// Scenario: the first offset at or after this time, `YYYY-MM-DDTHH:mm:SS.sss` (UTC unless
    /// it ends in `Z` or `+HH:MM`/`-HH:MM`).
    #[arg(long = "to-datetime", value_name = "DATETIME", value_parser = parse_datetime)]
    to_datetime: Option<i64>,
    /// Scenario: the committed offset moved by N (negative moves back), clamped.
    #[arg(long = "shift-by", value_name = "N", allow_negative_numbers = true)]
    shift_by: Option<i64>,
    /// Only print the plan (the default).
    #[arg(long = "dry-run", conflicts_with = "execute")]
    dry_run: bool,
    /// Apply the plan.
    #[arg(long)]
    execute: bool,
}

/// Runs `rill groups`.
impl GroupsArgs {
    /// The change this command attempts, if any (for the audit trail): a reset with
    /// --execute (a dry run changes nothing) or a deletion.
    pub fn change(&self) -> Option<Change> {
        let group = self.group.clone().unwrap_or_default();
        if self.reset_offsets && self.execute {
            Some(Change::new("reset-offsets", group, &self.connect))
        } else if self.delete {
            Some(Change::new("delete-group", group, &self.connect))
        } else {
            None
        }
    }
}

pub async fn run(args: GroupsArgs) -> Result<(), CliError> {
    validate(&args)?;
    let cluster = args.connect.connect().await?;
    let out = args.connect.output;
    if args.list {
        list(&cluster, out).await
    } else if args.describe {
        describe(&cluster, group(&args)?, out).await
    } else if args.reset_offsets {
        reset(&cluster, &args, out).await
    } else {
        delete(&cluster, group(&args)?, out).await
    }
}

fn validate(a: &GroupsArgs) -> Result<(), CliError> {
    let usage = |m: &str| Err(CliError::Usage(m.to_string()));
    if (a.describe || a.reset_offsets || a.delete) && a.group.is_none() {
        return usage("--group is required with --describe, --reset-offsets and --delete");
    }
    let scenario = a.to_earliest
        || a.to_latest
        || a.to_offset.is_some()
        || a.to_datetime.is_some()
        || a.shift_by.is_some();
    if a.reset_offsets {
        if !scenario {
            return usage(
                "--reset-offsets needs one of --to-earliest, --to-latest, --to-offset, \
                 --to-datetime, --shift-by",
            );
        }
        if a.topic.is_empty() && !a.all_topics {
            return usage("--reset-offsets needs --topic or --all-topics");
        }
        for spec in &a.topic {
            parse_topic_spec(spec)?;
        }
    } else {
        if scenario || a.dry_run || a.execute || a.all_topics || !a.topic.is_empty() {
            return usage(
                "--topic, --all-topics, the --to-*/--shift-by scenarios, --dry-run and \
                 --execute are only valid with --reset-offsets",
            );
        }
        if a.list && a.group.is_some() {
            return usage("--group is not valid with --list");
        }
    }
    Ok(())
}

fn group(a: &GroupsArgs) -> Result<&str, CliError> {
    a.group
        .as_deref()
        .ok_or_else(|| CliError::Usage("--group is required".into()))
}

fn does_not_exist(group: &str) -> CliError {
    CliError::Failed(format!("Consumer group '{group}' does not exist."))
}

async fn list(cluster: &Cluster, out: Output) -> Result<(), CliError> {
    let groups = cluster
        .list_groups()
        .await
        .map_err(|e| CliError::client("listing groups failed", e))?;
    match out {
        Output::Json => print_json(&Value::Array(
            groups
                .iter()
                .map(|g| {
                    json!({
                        "group": g.group_id,
                        "state": g.state,
                        "protocol_type": g.protocol_type,
                        "type": g.group_type,
                        "coordinator": g.coordinator,
                    })
                })
                .collect(),
        )),
        Output::Table => {
            // TYPE last: scripts reading the first columns keep working.
            let mut t = Table::new(&["GROUP", "STATE", "PROTOCOL-TYPE", "TYPE"]);
            for g in &groups {
                t.row(vec![
                    g.group_id.clone(),
                    g.state.clone().unwrap_or_else(|| "-".into()),
                    dash_if_empty(&g.protocol_type),
                    g.group_type.clone().unwrap_or_else(|| "-".into()),
                ]);
            }
            print!("{}", t.render(""));
        }
    }
    Ok(())
}

/// The group's description; GROUP_ID_NOT_FOUND (DescribeGroups v6+) reads as `Dead`.
async fn describe_or_dead(cluster: &Cluster, group: &str) -> Result<GroupDescription, CliError> {
    match cluster.describe_group(group).await {
        Ok(d) => Ok(d),
        Err(ClientError::Kafka {
            code: GROUP_ID_NOT_FOUND,
            ..
        }) => Ok(GroupDescription {
            group_id: group.to_string(),
            state: "Dead".into(),
            protocol_type: String::new(),
            protocol: String::new(),
            members: Vec::new(),
            coordinator: -1,
            group_type: "classic".into(),
            epochs: None,
        }),
        Err(e) => Err(CliError::client(
            format!("describing group '{group}' failed"),
            e,
        )),
    }
}

/// One row of `--describe`.
struct OffsetRow {
    tp: TopicPartition,
    committed: Option<i64>,
    log_start: Option<i64>,
    log_end: Option<i64>,
    member: Option<usize>,
}

impl OffsetRow {
    /// The console's lag (the one computation in `ops::lag`): from the log start where
    /// nothing is committed.
    fn lag(&self) -> Lag {
        partition_lag(self.committed, self.log_start, self.log_end)
    }

    /// LAG column: the number, with `*` where it counts from the log start (no commit).
    fn lag_text(&self) -> String {
        let l = self.lag();
        match (l.messages, l.basis) {
            (Some(n), LagBasis::LogStart) => format!("{n}*"),
            (Some(n), _) => n.to_string(),
            (None, _) => "unknown".into(),
        }
    }
}

async fn describe(cluster: &Cluster, group: &str, out: Output) -> Result<(), CliError> {
    let desc = describe_or_dead(cluster, group).await?;
    let committed = cluster
        .committed_offsets(group, None)
        .await
        .map_err(|e| CliError::client(format!("fetching offsets of group '{group}' failed"), e))?;
    if desc.state == "Dead" && desc.members.is_empty() && committed.is_empty() {
        return Err(does_not_exist(group));
    }
    // Every partition that is committed or assigned.
    let mut rows: BTreeMap<TopicPartition, OffsetRow> = BTreeMap::new();
    for (tp, c) in &committed {
        rows.insert(
            tp.clone(),
            OffsetRow {
                tp: tp.clone(),
                committed: Some(c.offset),
                log_start: None,
                log_end: None,
                member: None,
            },
        );
    }
    for (i, m) in desc.members.iter().enumerate() {
        for tp in &m.assignment {
            rows.entry(tp.clone())
                .or_insert_with(|| OffsetRow {
                    tp: tp.clone(),
                    committed: None,
                    log_start: None,
                    log_end: None,
                    member: None,
                })
                .member = Some(i);
        }
    }
    // Log end offsets, for partitions that still exist.
    let topics: Vec<String> = rows
        .keys()
        .map(|tp| tp.topic.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if !topics.is_empty() {
        let md = cluster
            .describe_topics(&topics)
            .await
            .map_err(|e| CliError::client("fetching topic metadata failed", e))?;
        let existing: Vec<TopicPartition> = rows
            .keys()
            .filter(|tp| {
                md.iter().any(|t| {
                    t.name == tp.topic
                        && t.error_code == 0
                        && t.partitions.iter().any(|p| p.partition == tp.partition)
                })
            })
            .cloned()
            .collect();
        let ends = cluster
            .list_offsets(&existing, OffsetSpec::Latest)
            .await
            .map_err(|e| CliError::client("fetching log end offsets failed", e))?;
        let starts = cluster
            .list_offsets(&existing, OffsetSpec::Earliest)
            .await
            .map_err(|e| CliError::client("fetching log start offsets failed", e))?;
        for (tp, o) in ends {
            if let Some(r) = rows.get_mut(&tp) {
                r.log_end = Some(o.offset);
            }
        }
        for (tp, o) in starts {
            if let Some(r) = rows.get_mut(&tp) {
                r.log_start = Some(o.offset);
            }
        }
    }
    match out {
        Output::Json => print_json(&describe_json(&desc, rows.values())),
        Output::Table => print!("{}", describe_table(&desc, rows.values())),
    }
    Ok(())
}

fn opt(v: Option<i64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn dash_if_empty(s: &str) -> String {
    if s.is_empty() {
        "-".to_string()
    } else {
        s.to_string()
    }
}

/// `orders(0,1),payments(2)`.
fn compact_assignment(tps: &[TopicPartition]) -> String {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in tps {
        by_topic.entry(&tp.topic).or_default().push(tp.partition);
    }
    if by_topic.is_empty() {
        return "-".into();
    }
    by_topic
        .iter()
        .map(|(t, ps)| {
            let ps: Vec<String> = ps.iter().map(i32::to_string).collect();
            format!("{t}({})", ps.join(","))
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn describe_table<'a>(d: &GroupDescription, rows: impl Iterator<Item = &'a OffsetRow>) -> String {
    let epochs = d.epochs.map_or(String::new(), |e| {
        format!(
            "  GroupEpoch: {}  AssignmentEpoch: {}",
            e.group_epoch, e.assignment_epoch
        )
    });
    let mut s = format!(
        "Group: {}  Type: {}  State: {}  ProtocolType: {}  {}: {}  Coordinator: {}  Members: {}{epochs}\n\n",
        d.group_id,
        d.group_type,
        d.state,
        dash_if_empty(&d.protocol_type),
        if d.group_type == "consumer" {
            "Assignor"
        } else {
            "Protocol"
        },
        dash_if_empty(&d.protocol),
        if d.coordinator < 0 {
            "-".to_string()
        } else {
            d.coordinator.to_string()
        },
        d.members.len()
    );
    let mut t = Table::new(&[
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
        "HOST",
        "CLIENT-ID",
    ]);
    let mut rows_with_log_start = 0;
    for r in rows {
        if r.lag().basis == LagBasis::LogStart {
            rows_with_log_start += 1;
        }
        let m = r.member.and_then(|i| d.members.get(i));
        t.row(vec![
            r.tp.topic.clone(),
            r.tp.partition.to_string(),
            opt(r.committed),
            opt(r.log_end),
            r.lag_text(),
            m.map_or("-".into(), |m| m.member_id.clone()),
            m.map_or("-".into(), |m| m.client_host.clone()),
            m.map_or("-".into(), |m| m.client_id.clone()),
        ]);
    }
    s.push_str(&t.render(""));
    if rows_with_log_start > 0 {
        s.push_str(
            "* no committed offset: the backlog counted from the log start (what auto.offset.reset=earliest reads)\n",
        );
    }
    if !d.members.is_empty() {
        // For a consumer group (KIP-848) also each member's protocol and epoch, and what the
        // coordinator wants it to own beside what it owns (they differ while it reconciles).
        let consumer_group = d.epochs.is_some();
        let mut headers = vec!["CONSUMER-ID", "GROUP-INSTANCE-ID", "HOST", "CLIENT-ID"];
        if consumer_group {
            headers.extend(["PROTOCOL", "EPOCH"]);
        }
        headers.extend(["#PARTITIONS", "ASSIGNMENT"]);
        if consumer_group {
            headers.push("TARGET-ASSIGNMENT");
        }
        let mut t = Table::new(&headers);
        for m in &d.members {
            let mut row = vec![
                m.member_id.clone(),
                m.group_instance_id.clone().unwrap_or_else(|| "-".into()),
                m.client_host.clone(),
                m.client_id.clone(),
            ];
            if consumer_group {
                let protocol = if m.classic_member {
                    "classic"
                } else {
                    "consumer"
                };
                row.push(protocol.into());
                row.push(m.member_epoch.map_or("-".into(), |e| e.to_string()));
            }
            row.push(m.assignment.len().to_string());
            row.push(compact_assignment(&m.assignment));
            if consumer_group {
                let target = m.target_assignment.as_deref();
                row.push(target.map_or("-".into(), compact_assignment));
            }
            t.row(row);
        }
        s.push('\n');
        s.push_str(&t.render(""));
    }
    s
}

fn describe_json<'a>(d: &GroupDescription, rows: impl Iterator<Item = &'a OffsetRow>) -> Value {
    json!({
        "group": d.group_id,
        "state": d.state,
        "protocol_type": d.protocol_type,
        "protocol": d.protocol,
        "type": d.group_type,
        "group_epoch": d.epochs.map(|e| e.group_epoch),
        "assignment_epoch": d.epochs.map(|e| e.assignment_epoch),
        "coordinator": if d.coordinator < 0 { Value::Null } else { json!(d.coordinator) },
        "members": d.members.iter().map(|m| json!({
            "member_id": m.member_id,
            "group_instance_id": m.group_instance_id,
            "client_id": m.client_id,
            "host": m.client_host,
            "member_epoch": m.member_epoch,
            "member_protocol": if d.epochs.is_none() || m.classic_member { "classic" } else { "consumer" },
            "assignment": tps_json(&m.assignment),
            "target_assignment": m.target_assignment.as_deref().map(tps_json),
        })).collect::<Vec<_>>(),
        "offsets": rows.map(|r| json!({
            "topic": r.tp.topic,
            "partition": r.tp.partition,
            "current_offset": r.committed,
            "log_start_offset": r.log_start,
            "log_end_offset": r.log_end,
            "lag": r.lag().messages,
            "lag_basis": r.lag().basis.as_str(),
            "member_id": r.member.and_then(|i| d.members.get(i)).map(|m| m.member_id.clone()),
        })).collect::<Vec<_>>(),
    })
}

fn tps_json(tps: &[TopicPartition]) -> Value {
    Value::Array(
        tps.iter()
            .map(|tp| json!({"topic": tp.topic, "partition": tp.partition}))
            .collect(),
    )
}

/// Parses `TOPIC` or `TOPIC:0,1,2`.
fn parse_topic_spec(s: &str) -> Result<(String, Option<Vec<i32>>), CliError> {
    let bad = || CliError::Usage(format!("--topic '{s}': expected TOPIC or TOPIC:P[,P...]"));
    match s.split_once(':') {
        None if !s.is_empty() => Ok((s.to_string(), None)),
        None => Err(bad()),
        Some((t, ps)) => {
            if t.is_empty() {
                return Err(bad());
            }
            let parts = ps
                .split(',')
                .map(|p| p.trim().parse::<i32>().ok().filter(|p| *p >= 0))
                .collect::<Option<Vec<i32>>>()
                .ok_or_else(bad)?;
            Ok((t.to_string(), Some(parts)))
        }
    }
}

async fn reset(cluster: &Cluster, a: &GroupsArgs, out: Output) -> Result<(), CliError> {
    let group = group(a)?;
    let desc = describe_or_dead(cluster, group).await?;
    if !desc.is_inactive() {
        return Err(CliError::Failed(format!(
            "Assignments can only be reset if the group '{group}' is inactive, but the current \
             state is {} ({} active member(s)). Stop its consumers first.",
            desc.state,
            desc.members.len()
        )));
    }
    // The partitions to reset.
    let mut partitions: BTreeSet<TopicPartition> = BTreeSet::new();
    if a.all_topics {
        let committed = cluster.committed_offsets(group, None).await.map_err(|e| {
            CliError::client(format!("fetching offsets of group '{group}' failed"), e)
        })?;
        partitions.extend(committed.into_keys());
    }
    for spec in &a.topic {
        let (topic, parts) = parse_topic_spec(spec)?;
        let all = cluster
            .topic_partitions(&topic)
            .await
            .map_err(|e| match e {
                ClientError::Kafka {
                    code: UNKNOWN_TOPIC_OR_PARTITION,
                    ..
                } => CliError::Failed(format!("Topic '{topic}' does not exist.")),
                e => CliError::client(format!("topic '{topic}'"), e),
            })?;
        match parts {
            None => partitions.extend(all),
            Some(ps) => {
                for p in ps {
                    let tp = TopicPartition::new(topic.clone(), p);
                    if !all.contains(&tp) {
                        return Err(CliError::Failed(format!(
                            "Partition {p} of topic '{topic}' does not exist (it has {}).",
                            all.len()
                        )));
                    }
                    partitions.insert(tp);
                }
            }
        }
    }
    let partitions: Vec<TopicPartition> = partitions.into_iter().collect();
    let scenario = if a.to_earliest {
        Scenario::Earliest
    } else if a.to_latest {
        Scenario::Latest
    } else if let Some(n) = a.to_offset {
        Scenario::Offset(n)
    } else if let Some(ts) = a.to_datetime {
        Scenario::Timestamp(ts)
    } else if let Some(n) = a.shift_by {
        Scenario::ShiftBy(n)
    } else {
        return Err(CliError::Usage("no reset scenario given".into()));
    };
    let planned = reset::plan_from_cluster(cluster, group, &partitions, scenario)
        .await
        .map_err(|e| match e {
            ResetError::Client { what, source } => {
                CliError::client(format!("fetching {what} failed"), source)
            }
            e => CliError::Failed(e.to_string()),
        })?;
    for p in planned.iter().filter(|p| p.clamped()) {
        eprintln!(
            "New offset ({}) for {} is outside {}..{}; using {} instead.",
            p.wanted, p.tp, p.log_start, p.log_end, p.target
        );
    }
    let plan: BTreeMap<TopicPartition, i64> =
        planned.iter().map(|p| (p.tp.clone(), p.target)).collect();
    let current: BTreeMap<TopicPartition, i64> = planned
        .iter()
        .filter_map(|p| Some((p.tp.clone(), p.current?)))
        .collect();
    if a.execute {
        cluster.commit_offsets(group, &plan).await.map_err(|e| {
            CliError::client(format!("committing offsets of group '{group}' failed"), e)
        })?;
    }
    match out {
        Output::Json => print_json(&json!({
            "group": group,
            "executed": a.execute,
            "partitions": plan.iter().map(|(tp, new)| json!({
                "topic": tp.topic,
                "partition": tp.partition,
                "current_offset": current.get(tp),
                "new_offset": new,
            })).collect::<Vec<_>>(),
        })),
        Output::Table => {
            let mut t = Table::new(&["TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET"]);
            for (tp, new) in &plan {
                t.row(vec![
                    tp.topic.clone(),
                    tp.partition.to_string(),
                    opt(current.get(tp).copied()),
                    new.to_string(),
                ]);
            }
            print!("{}", t.render(""));
            if a.execute {
                println!(
                    "Offsets of group '{group}' reset ({} partitions).",
                    plan.len()
                );
            } else {
                println!("Dry run: nothing changed. Add --execute to apply this plan.");
            }
        }
    }
    Ok(())
}

async fn delete(cluster: &Cluster, group: &str, out: Output) -> Result<(), CliError> {
    let results = cluster
        .delete_groups(&[group.to_string()])
        .await
        .map_err(|e| CliError::client(format!("deleting group '{group}' failed"), e))?;
    for (_, r) in results {
        r.map_err(|e| match e {
            ClientError::Kafka {
                code: GROUP_ID_NOT_FOUND,
                ..
            } => does_not_exist(group),
            ClientError::Kafka {
                code: NON_EMPTY_GROUP,
                ..
            } => CliError::Failed(format!(
                "Consumer group '{group}' is not empty: it has active members. Stop its consumers first."
            )),
            e => CliError::client(format!("deleting group '{group}' failed"), e),
        })?;
    }
    match out {
        Output::Json => print_json(&json!({ "result": "deleted", "group": group })),
        Output::Table => println!("Deleted consumer group '{group}'."),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_specs() {
        assert_eq!(parse_topic_spec("t").unwrap(), ("t".into(), None));
        assert_eq!(
            parse_topic_spec("t:0,2").unwrap(),
            ("t".into(), Some(vec![0, 2]))
        );
        for bad in ["", ":1", "t:", "t:x", "t:-1", "t:1,,2"] {
            assert!(parse_topic_spec(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn assignments_compact() {
        let tps = vec![
            TopicPartition::new("a", 0),
            TopicPartition::new("a", 1),
            TopicPartition::new("b", 2),
        ];
        assert_eq!(compact_assignment(&tps), "a(0,1),b(2)");
        assert_eq!(compact_assignment(&[]), "-");
    }
}
