//! Replica placement: Kafka's round-robin with a shifting follower offset, so leaders and
//! followers spread evenly across brokers.

use crate::controller::BrokerInfo;
use crate::error::KafkaError;
use crate::types::BrokerId;

/// Places `count` new partitions (numbered from `first_partition`) with `rf` replicas each.
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
    let n = brokers.len();
    if rf as usize > n {
        return Err(KafkaError::InvalidReplicationFactor(format!("Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only {n} broker(s) are registered.")));
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
                id: BrokerId(i),
                host: "h".into(),
                port: 1,
                rack: None,
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
