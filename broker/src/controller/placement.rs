//! Replica placement: Kafka's round-robin with a shifting follower offset, so leaders and
//! followers spread evenly across brokers; rack-aware when brokers have a `broker.rack`
//! (Kafka's `assignReplicasToBrokersRackAware`): the brokers are listed alternating between
//! racks, leaders go round-robin over that list, and each follower is the next broker (by
//! the shifted offset) whose rack holds no replica of the partition yet, until every rack has
//! one. So a partition's replicas sit on min(replication factor, racks) distinct racks.
//! Brokers without a rack count as one more rack of their own (as KRaft's placer treats them)
//! rather than refusing the topic.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::KafkaError;
use crate::metadata::{BrokerInfo, MetadataImage};
use crate::types::BrokerId;

/// The most partitions one request may create (Kafka's KRaft controller refuses a request that
/// would write more than 10,000 records, `MAX_RECORDS_PER_USER_OP`): POLICY_VIOLATION beyond
/// it, before anything is placed. Larger topics are grown in steps (CreatePartitions).
pub const MAX_PARTITIONS_PER_REQUEST: i32 = 10_000;

/// Places `count` new partitions (numbered from `first_partition`) with `rf` replicas each,
/// rack-aware when any broker has a rack.
pub fn assign(
    count: i32,
    rf: i16,
    brokers: &[&BrokerInfo],
    first_partition: usize,
) -> Result<Vec<Vec<BrokerId>>, KafkaError> {
    if count <= 0 {
        return Err(KafkaError::InvalidPartitions(format!(
            "Number of partitions must be larger than 0, got {count}."
        )));
    }
    if rf <= 0 {
        return Err(KafkaError::InvalidReplicationFactor(format!(
            "Replication factor must be larger than 0, got {rf}."
        )));
    }
    if count > MAX_PARTITIONS_PER_REQUEST {
        return Err(KafkaError::PolicyViolation(format!(
            "Creating {count} partitions in one request is more than the {MAX_PARTITIONS_PER_REQUEST} a request may create; create the topic with fewer and add the rest with CreatePartitions in steps."
        )));
    }
    let n = brokers.len();
    if rf as usize > n {
        return Err(KafkaError::InvalidReplicationFactor(format!("Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only {n} broker(s) are registered.")));
    }
    if brokers.iter().any(|b| b.rack.is_some()) {
        return Ok(assign_rack_aware(count, rf, brokers, first_partition));
    }
    let mut ids: Vec<BrokerId> = brokers.iter().map(|b| b.id).collect();
    ids.sort();
    let mut out = Vec::with_capacity(count as usize);
    for i in 0..count as usize {
        let p = first_partition + i;
        let first = p % n;
        // Kafka's scheme: the follower shift grows every n partitions so followers of
        // consecutive leaders do not all land on the same brokers.
        let next_shift = (p / n) % n.max(2).saturating_sub(1).max(1);
        let mut replicas = vec![ids[first]];
        for j in 0..(rf as usize - 1) {
            let shift = 1 + (next_shift + j) % (n - 1).max(1);
            replicas.push(ids[(first + shift) % n]);
        }
        out.push(replicas);
    }
    Ok(out)
}

/// Kafka's `getRackAlternatedBrokerList`: one broker of each rack in turn (racks sorted by
/// name, brokers by id within a rack), so consecutive entries sit on different racks.
fn rack_alternated<'a>(brokers: &[&'a BrokerInfo]) -> Vec<&'a BrokerInfo> {
    let mut by_rack: BTreeMap<&str, Vec<&'a BrokerInfo>> = BTreeMap::new();
    for b in brokers {
        by_rack
            .entry(b.rack.as_deref().unwrap_or(""))
            .or_default()
            .push(b);
    }
    for v in by_rack.values_mut() {
        v.sort_by_key(|b| b.id);
    }
    let mut out = Vec::with_capacity(brokers.len());
    for i in 0.. {
        if out.len() == brokers.len() {
            break;
        }
        out.extend(by_rack.values().filter_map(|v| v.get(i).copied()));
    }
    out
}

/// Kafka's `assignReplicasToBrokersRackAware` with a fixed start index of 0 (callers check
/// `count` and `rf` against the broker count first).
fn assign_rack_aware(
    count: i32,
    rf: i16,
    brokers: &[&BrokerInfo],
    first_partition: usize,
) -> Vec<Vec<BrokerId>> {
    let arranged = rack_alternated(brokers);
    let n = arranged.len();
    let rack = |b: &BrokerInfo| b.rack.clone().unwrap_or_default();
    let racks = arranged
        .iter()
        .map(|b| rack(b))
        .collect::<BTreeSet<_>>()
        .len();
    let mut out = Vec::with_capacity(count.max(0) as usize);
    for i in 0..count.max(0) as usize {
        let p = first_partition + i;
        let shift = p / n;
        let first = p % n;
        let leader = arranged[first];
        let mut replicas = vec![leader.id];
        let mut used_racks = BTreeSet::from([rack(leader)]);
        let mut k = 0;
        while replicas.len() < rf as usize && n > 1 {
            let idx = (first + 1 + (shift * racks + k) % (n - 1)) % n;
            let b = arranged[idx];
            k += 1;
            let rack_ok = !used_racks.contains(&rack(b)) || used_racks.len() == racks;
            // Every other broker was considered once: take any unused one (cannot happen
            // while rf <= brokers, but never loop forever).
            let exhausted = k > n;
            if !replicas.contains(&b.id) && (rack_ok || exhausted) {
                replicas.push(b.id);
                used_racks.insert(rack(b));
            }
        }
        out.push(replicas);
    }
    out
}

/// A balanced placement for a set of topics over `brokers`, each topic given as
/// `(name, partition count, replication factor)`: Kafka's placement (rack-aware when the
/// brokers have racks) with each topic's partitions numbered on from the previous topic's, so
/// leaders spread over the brokers across the whole set rather than every topic starting on
/// the same broker. This is what `rill reassign --generate` proposes (kafka-reassign-
/// partitions.sh's `--generate`), and what creation does for one topic.
pub fn plan_assignment(
    topics: &[(String, i32, i16)],
    brokers: &[&BrokerInfo],
) -> Result<BTreeMap<String, Vec<Vec<BrokerId>>>, KafkaError> {
    let mut out = BTreeMap::new();
    let mut next = 0usize;
    for (name, count, rf) in topics {
        let a = assign(*count, *rf, brokers, next).map_err(|e| match e {
            KafkaError::InvalidReplicationFactor(m) => {
                KafkaError::InvalidReplicationFactor(format!("Topic '{name}': {m}"))
            }
            e => e,
        })?;
        next += a.len();
        out.insert(name.clone(), a);
    }
    Ok(out)
}

/// Refuses new replicas that would take a broker past its `max.broker.partitions` (the
/// limit it registered with, when it set one), with
/// POLICY_VIOLATION naming the broker and the limit. Checked before anything is proposed, so
/// a refused CreateTopics or CreatePartitions creates nothing.
pub fn check_capacity(img: &MetadataImage, added: &[Vec<BrokerId>]) -> Result<(), KafkaError> {
    let mut asked: BTreeMap<BrokerId, u64> = BTreeMap::new();
    for r in added.iter().flatten() {
        *asked.entry(*r).or_insert(0) += 1;
    }
    if asked
        .keys()
        .all(|b| img.brokers.get(b).and_then(|i| i.max_partitions).is_none())
    {
        return Ok(());
    }
    let hosted = img.replica_counts();
    for (broker, n) in asked {
        let Some(max) = img.brokers.get(&broker).and_then(|i| i.max_partitions) else {
            continue;
        };
        let now = hosted.get(&broker).copied().unwrap_or(0);
        if now + n > u64::from(max) {
            return Err(KafkaError::PolicyViolation(format!(
                "Broker {broker} would host {} partition replicas ({now} now, {n} more asked for), above its max.broker.partitions of {max}. Raise max.broker.partitions, add brokers, or create fewer partitions.",
                now + n
            )));
        }
    }
    Ok(())
}

/// Checks a client-supplied assignment: known brokers, no duplicates, one replication factor.
pub fn check_assignment(
    a: &[Vec<BrokerId>],
    brokers: &[&BrokerInfo],
) -> Result<Vec<Vec<BrokerId>>, KafkaError> {
    let rf = a.first().map(Vec::len).unwrap_or(0);
    for (i, replicas) in a.iter().enumerate() {
        if replicas.is_empty() {
            return Err(KafkaError::InvalidReplicaAssignment(format!(
                "Partition {i} has an empty replica list."
            )));
        }
        if replicas.len() != rf {
            return Err(KafkaError::InvalidReplicaAssignment(format!("Partition {i} has {} replicas but partition 0 has {rf}: all partitions need the same replication factor.", replicas.len())));
        }
        for (j, r) in replicas.iter().enumerate() {
            if replicas[..j].contains(r) {
                return Err(KafkaError::InvalidReplicaAssignment(format!(
                    "Partition {i} lists broker {r} twice."
                )));
            }
            if !brokers.iter().any(|b| b.id == *r) {
                return Err(KafkaError::InvalidReplicaAssignment(format!(
                    "Partition {i} names broker {r}, which is not registered."
                )));
            }
        }
    }
    Ok(a.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn brokers(n: i32) -> Vec<BrokerInfo> {
        (1..=n)
            .map(|i| BrokerInfo {
                endpoints: Vec::new(),
                id: BrokerId(i),
                host: "h".into(),
                port: 1,
                rack: None,
                max_partitions: None,
            })
            .collect()
    }

    proptest! {
        #[test]
        fn every_partition_gets_rf_distinct_known_replicas(n in 1i32..7, rf in 1i16..7, count in 1i32..50) {
            let b = brokers(n);
            let refs: Vec<&BrokerInfo> = b.iter().collect();
            let r = assign(count, rf, &refs, 0);
            if rf as i32 > n {
                prop_assert!(r.is_err());
            } else {
                let a = r.unwrap();
                prop_assert_eq!(a.len(), count as usize);
                for reps in &a {
                    prop_assert_eq!(reps.len(), rf as usize);
                    let mut s = reps.clone();
                    s.sort();
                    s.dedup();
                    prop_assert_eq!(s.len(), rf as usize);
                }
                // Leaders spread round-robin.
                let leaders_on_1 = a.iter().filter(|r| r[0] == BrokerId(1)).count();
                prop_assert!(leaders_on_1 <= (count as usize).div_ceil(n as usize));
            }
        }
    }

    fn racked(racks: &[&str]) -> Vec<BrokerInfo> {
        racks
            .iter()
            .enumerate()
            .map(|(i, r)| BrokerInfo {
                endpoints: Vec::new(),
                id: BrokerId(i as i32 + 1),
                host: "h".into(),
                port: 1,
                rack: Some(r.to_string()),
                max_partitions: None,
            })
            .collect()
    }

    fn rack_of(b: &[BrokerInfo], id: BrokerId) -> String {
        b.iter()
            .find(|x| x.id == id)
            .and_then(|x| x.rack.clone())
            .unwrap_or_default()
    }

    proptest! {
        #[test]
        fn rack_aware_replicas_span_min_rf_racks_and_leaders_spread(
            racks in proptest::collection::vec(0u8..4, 1..9),
            rf in 1i16..6,
            count in 1i32..60,
            first in 0usize..20,
        ) {
            let names: Vec<String> = racks.iter().map(|r| format!("rack{r}")).collect();
            let b = racked(&names.iter().map(String::as_str).collect::<Vec<_>>());
            let refs: Vec<&BrokerInfo> = b.iter().collect();
            let n = b.len();
            let distinct_racks = names.iter().collect::<BTreeSet<_>>().len();
            let r = assign(count, rf, &refs, first);
            if rf as usize > n {
                prop_assert!(r.is_err());
                return Ok(());
            }
            let a = r.unwrap();
            prop_assert_eq!(a.len(), count as usize);
            for reps in &a {
                prop_assert_eq!(reps.len(), rf as usize);
                let distinct: BTreeSet<_> = reps.iter().collect();
                prop_assert_eq!(distinct.len(), rf as usize, "no broker twice: {:?}", reps);
                let on_racks: BTreeSet<String> = reps.iter().map(|id| rack_of(&b, *id)).collect();
                prop_assert_eq!(on_racks.len(), (rf as usize).min(distinct_racks), "{:?}", reps);
            }
            // Leaders go round-robin: no broker leads more than its fair share, rounded up.
            for broker in &b {
                let led = a.iter().filter(|r| r[0] == broker.id).count();
                prop_assert!(led <= (count as usize).div_ceil(n), "broker {} leads {}", broker.id, led);
            }
        }
    }

    #[test]
    fn racks_alternate() {
        let b = racked(&["a", "a", "b", "b", "c"]);
        let refs: Vec<&BrokerInfo> = b.iter().collect();
        let ids: Vec<i32> = rack_alternated(&refs).iter().map(|b| b.id.0).collect();
        assert_eq!(ids, vec![1, 3, 5, 2, 4]);
        // Two racks, RF 3: both racks used, the third replica anywhere else.
        let b = racked(&["a", "a", "b", "b"]);
        let refs: Vec<&BrokerInfo> = b.iter().collect();
        for reps in assign(8, 3, &refs, 0).unwrap() {
            let on: BTreeSet<String> = reps.iter().map(|id| rack_of(&b, *id)).collect();
            assert_eq!(on.len(), 2, "{reps:?}");
        }
    }

    #[test]
    fn a_plan_spreads_leaders_across_topics() {
        let b = brokers(3);
        let refs: Vec<&BrokerInfo> = b.iter().collect();
        let topics: Vec<(String, i32, i16)> = (0..3).map(|i| (format!("t{i}"), 1, 2)).collect();
        let plan = plan_assignment(&topics, &refs).unwrap();
        let leaders: BTreeSet<BrokerId> = plan.values().map(|a| a[0][0]).collect();
        assert_eq!(leaders.len(), 3, "{plan:?}");
        assert!(plan_assignment(&[("x".into(), 1, 4)], &refs).is_err());
    }

    #[test]
    fn bad_assignments_are_refused() {
        let b = brokers(2);
        let refs: Vec<&BrokerInfo> = b.iter().collect();
        assert!(check_assignment(&[vec![BrokerId(1), BrokerId(1)]], &refs).is_err());
        assert!(check_assignment(&[vec![BrokerId(9)]], &refs).is_err());
        assert!(
            check_assignment(&[vec![BrokerId(1)], vec![BrokerId(1), BrokerId(2)]], &refs).is_err()
        );
        assert!(check_assignment(&[vec![BrokerId(2), BrokerId(1)]], &refs).is_ok());
    }
}
