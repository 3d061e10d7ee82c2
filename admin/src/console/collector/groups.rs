//! One cycle's group reads: describe, committed offsets, lag, time lag and status per group.

use super::*;

/// What one group's describe and offset fetch gave this cycle.
struct GroupRead {
    desc: rill_client::GroupDescription,
    committed: BTreeMap<TopicPartition, rill_client::CommittedOffset>,
}

pub(super) async fn collect_groups(
    cluster: &Arc<Cluster>,
    snap: &Snapshot,
    offsets: &Offsets,
    history: &mut History,
    thresholds: &HashMap<String, Thresholds>,
    warnings: &mut Vec<String>,
) -> Vec<GroupInfo> {
    let now = snap.taken_at_ms;
    let defaults = thresholds
        .get(DEFAULT_THRESHOLDS)
        .copied()
        .unwrap_or_default();
    let listed = match cluster.list_groups().await {
        Ok(l) => l.into_iter().map(|g| g.group_id).collect::<Vec<_>>(),
        Err(e) => {
            // Keep every group known, with its last figures, marked as not measured.
            history.failed("ListGroups");
            warnings.push(format!("ListGroups: {e}"));
            let error = format!("ListGroups failed: {e}");
            let groups: Vec<GroupInfo> = history
                .groups
                .values()
                .map(|g| stale_group(g, &error))
                .collect();
            return groups;
        }
    };
    let mut groups = Vec::new();
    let mut ts_reads = 0;
    let mut record_ts_used: HashMap<RecordAt, i64> = HashMap::new();
    for group_id in listed {
        let read = async {
            let desc = cluster
                .describe_group(&group_id)
                .await
                .map_err(|e| ("DescribeGroups", e))?;
            let committed = cluster
                .committed_offsets(&group_id, None)
                .await
                .map_err(|e| ("OffsetFetch", e))?;
            Ok::<_, (&str, ClientError)>(GroupRead { desc, committed })
        };
        let GroupRead { desc, committed } = match read.await {
            Ok(r) => r,
            Err((request, e)) => {
                history.failed(request);
                warnings.push(format!("{request} {group_id}: {e}"));
                let error = format!("{request} failed: {e}");
                groups.push(match history.groups.get(&group_id) {
                    Some(g) => stale_group(g, &error),
                    None => GroupInfo {
                        group_id: group_id.clone(),
                        state: "Unknown".into(),
                        protocol_type: String::new(),
                        group_type: String::new(),
                        epochs: None,
                        protocol: String::new(),
                        coordinator: -1,
                        members: Vec::new(),
                        partitions: Vec::new(),
                        status: GroupStatus::Errored,
                        status_reason: error.clone(),
                        forecast: Forecast::Unknown,
                        error: Some(error),
                    },
                });
                continue;
            }
        };
        let previous = history.groups.get(&group_id).cloned();
        let mut owners: BTreeMap<TopicPartition, String> = BTreeMap::new();
        for m in &desc.members {
            for tp in &m.assignment {
                owners.insert(tp.clone(), m.member_id.clone());
            }
        }
        let keys: BTreeSet<TopicPartition> =
            committed.keys().chain(owners.keys()).cloned().collect();
        let th = thresholds.get(&group_id).copied().unwrap_or(defaults);
        let keep_ms = th.window_ms();
        let has_members = !desc.members.is_empty();
        // Record timestamps for offsets older than the end-offset history, read at once
        // (the client takes `&self`), within this cycle's budget; the loop below uses them.
        let mut reads = tokio::task::JoinSet::new();
        for tp in &keys {
            let start = offsets.earliest.get(tp).copied();
            let Some(end) = offsets.latest.get(tp).copied() else {
                continue;
            };
            let Some(position) = committed.get(tp).map(|o| o.offset).or(start) else {
                continue;
            };
            let covered = history
                .tables
                .get(tp)
                .and_then(|t| t.lag_seconds(position, now))
                .is_some();
            let at = RecordAt {
                tp: tp.clone(),
                offset: position,
            };
            if position < 0 || position >= end || covered || history.record_ts.contains_key(&at) {
                continue;
            }
            if ts_reads >= MAX_TIMESTAMP_READS_PER_CYCLE {
                break;
            }
            ts_reads += 1;
            let cluster = cluster.clone();
            reads.spawn(async move {
                let r = cluster.fetch_records(&at.tp, at.offset, 1).await;
                (at, r)
            });
        }
        while let Some(done) = reads.join_next().await {
            match done {
                Ok((at, Ok(r))) => {
                    if let Some(ts) = r.records.first().map(|r| r.timestamp) {
                        history.record_ts.insert(at, ts);
                    }
                }
                Ok((at, Err(e))) => {
                    history.failed("Fetch");
                    tracing::debug!(error = %e, tp = %at.tp, "record timestamp for time lag");
                }
                Err(e) => tracing::debug!(error = %e, "record timestamp read did not finish"),
            }
        }
        let mut partitions = Vec::new();
        for tp in keys {
            let c = committed.get(&tp).map(|o| o.offset);
            let start = offsets.earliest.get(&tp).copied();
            let end = offsets.latest.get(&tp).copied();
            let lag = partition_lag(c, start, end);
            let key = GroupPartition {
                group: group_id.clone(),
                tp: tp.clone(),
            };
            let owner = owners.get(&tp).cloned();
            let Some(messages) = lag.messages else {
                // Not measured: the last good figures, marked, and no point in the window.
                let why = offsets
                    .missing
                    .get(&tp)
                    .cloned()
                    .unwrap_or_else(|| "the partition is not in the cluster metadata".into());
                let last = previous.as_ref().and_then(|g| {
                    g.partitions
                        .iter()
                        .find(|p| p.topic == tp.topic && p.partition == tp.partition)
                });
                let mut p = match last {
                    Some(p) => p.clone(),
                    None => PartitionLag {
                        topic: tp.topic.clone(),
                        partition: tp.partition,
                        committed: c.unwrap_or(-1),
                        end: -1,
                        log_start: -1,
                        lag: -1,
                        stable_end: -1,
                        stable_lag: -1,
                        basis: LagBasis::Unknown,
                        lag_seconds: None,
                        lag_seconds_method: None,
                        status: GroupStatus::Errored,
                        status_reason: String::new(),
                        measured_at_ms: 0,
                        error: None,
                        owner: None,
                    },
                };
                p.owner = owner;
                p.status = GroupStatus::Errored;
                p.status_reason = format!("not measured: {why}");
                p.error = Some(why);
                partitions.push(p);
                continue;
            };
            let (end, start) = (end.unwrap_or(-1), start.unwrap_or(-1));
            // Time lag of the next record the group reads: the committed offset, or the
            // log start when nothing is committed.
            let position = c.unwrap_or(start);
            let from_table = history
                .tables
                .get(&tp)
                .and_then(|t| t.lag_seconds(position, now));
            let time_lag = match from_table {
                Some(found) => Some(found),
                None if position >= end => Some((0.0, TimeLagMethod::CaughtUp)),
                None => {
                    let cache_key = RecordAt {
                        tp: tp.clone(),
                        offset: position,
                    };
                    history.record_ts.get(&cache_key).copied().map(|ts| {
                        record_ts_used.insert(cache_key, ts);
                        (
                            ((now - ts) as f64 / 1000.0).max(0.0),
                            TimeLagMethod::RecordTimestamp,
                        )
                    })
                }
            };
            let window = history.windows.entry(key).or_default();
            window.push(
                LagPoint {
                    ts_ms: now,
                    committed: c.unwrap_or(-1),
                    end,
                    lag: messages,
                },
                keep_ms,
            );
            let lag_seconds = time_lag.map(|(s, _)| s);
            let (status, reason) = window.status(lag_seconds, has_members, &th);
            let stable_end = offsets.stable.get(&tp).copied();
            let stable = partition_lag(c, Some(start), stable_end);
            partitions.push(PartitionLag {
                topic: tp.topic.clone(),
                partition: tp.partition,
                committed: c.unwrap_or(-1),
                end,
                log_start: start,
                lag: messages,
                stable_end: stable_end.unwrap_or(-1),
                stable_lag: stable.messages.unwrap_or(-1),
                basis: lag.basis,
                lag_seconds,
                lag_seconds_method: time_lag.map(|(_, m)| m),
                status,
                status_reason: reason,
                measured_at_ms: now,
                error: None,
                owner,
            });
        }
        // The first partition with the worst status (max_by_key keeps the last of equals).
        let worst = partitions
            .iter()
            .rev()
            .max_by_key(|p| p.status)
            .filter(|p| p.status != GroupStatus::Ok || p.lag > 0);
        let (mut status, mut status_reason) = match worst {
            Some(p) => (
                p.status,
                format!("{}-{}: {}", p.topic, p.partition, p.status_reason),
            ),
            None if partitions.is_empty() => (GroupStatus::Ok, "no partitions to consume".into()),
            None => (GroupStatus::Ok, "caught up".into()),
        };
        // The offsets threshold holds for the group's total too: many partitions each under
        // it can still add up to a backlog the operator set out to hear about.
        let total: i64 = partitions
            .iter()
            .filter(|p| p.error.is_none() && p.lag >= 0)
            .map(|p| p.lag)
            .sum();
        if status == GroupStatus::Ok && total > th.max_lag {
            status = GroupStatus::Lagging;
            status_reason = format!("total lag {total} above the threshold {}", th.max_lag);
        }
        let no_history = Window::default();
        let forecast = lag::forecast(partitions.iter().map(|p| {
            let w = history.windows.get(&GroupPartition {
                group: group_id.clone(),
                tp: TopicPartition::new(p.topic.clone(), p.partition),
            });
            (
                w.unwrap_or(&no_history),
                p.error.is_none().then_some(p.lag).filter(|l| *l >= 0),
            )
        }));
        groups.push(GroupInfo {
            group_id: desc.group_id.clone(),
            state: desc.state.clone(),
            protocol_type: desc.protocol_type.clone(),
            group_type: desc.group_type.clone(),
            epochs: desc.epochs.map(|e| (e.group_epoch, e.assignment_epoch)),
            protocol: desc.protocol.clone(),
            coordinator: desc.coordinator,
            members: desc
                .members
                .iter()
                .map(|m| MemberInfo {
                    member_id: m.member_id.clone(),
                    instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    host: m.client_host.clone(),
                    assignment: m
                        .assignment
                        .iter()
                        .map(|tp| (tp.topic.clone(), tp.partition))
                        .collect(),
                    target_assignment: m.target_assignment.as_ref().map(|t| {
                        t.iter()
                            .map(|tp| (tp.topic.clone(), tp.partition))
                            .collect()
                    }),
                    member_epoch: m.member_epoch,
                    member_protocol: if desc.epochs.is_some() && !m.classic_member {
                        "consumer".into()
                    } else {
                        "classic".into()
                    },
                })
                .collect(),
            partitions,
            status,
            status_reason,
            forecast,
            error: None,
        });
    }
    history
        .windows
        .retain(|k, _| groups.iter().any(|x| x.group_id == k.group));
    history.record_ts = record_ts_used;
    history.groups = groups
        .iter()
        .map(|g| (g.group_id.clone(), g.clone()))
        .collect();
    groups
}

/// `g` as last measured, marked as not measured this cycle.
fn stale_group(g: &GroupInfo, error: &str) -> GroupInfo {
    let mut g = g.clone();
    for p in &mut g.partitions {
        if p.error.is_none() {
            p.error = Some(error.to_string());
        }
        p.status = GroupStatus::Errored;
        p.status_reason = format!("not measured: {error}");
    }
    g.status = GroupStatus::Errored;
    g.status_reason = format!("not measured: {error}");
    g.forecast = Forecast::Unknown;
    g.error = Some(error.to_string());
    g
}
