//! A network partition: the leader of a replicated partition is cut off from the other nodes
//! (TCP proxies between the nodes stop forwarding; test clients still reach it). It must stop
//! acting as leader (its acks=all writes fail), the others elect a new leader and keep
//! acknowledging writes, nothing acknowledged is lost, and once the network heals the old
//! leader truncates what it wrote alone and rejoins the ISR.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use common::checks::*;
use common::{start_proxied_cluster, wait_for};
use rdkafka::admin::{NewTopic, TopicReplication};

const TOPIC: &str = "cut";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_cluster_stops_leading_and_loses_nothing_acknowledged() {
    let (mut nodes, net) = start_proxied_cluster(3, &["replica.lag.time.max.ms=5000"]);
    let all = nodes
        .iter()
        .map(|n| n.bootstrap.clone())
        .collect::<Vec<_>>()
        .join(",");
    create_topic(
        &all,
        NewTopic::new(TOPIC, 1, TopicReplication::Fixed(3)).set("min.insync.replicas", "2"),
    )
    .await;
    let before = wait_for(30, "a leader with a full ISR", || {
        partition_info(&nodes[0], TOPIC).filter(|i| i.leader > 0 && i.isr.len() == 3)
    });
    let cut = before.leader as usize;
    let others: Vec<usize> = (1..=3).filter(|n| *n != cut).collect();

    // Numbered idempotent acks=all writes, continuously, from before the cut until after the
    // heal; every acknowledged number is recorded.
    let p = producer(&all);
    let acked = Arc::new(Mutex::new(Vec::<usize>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (acked, stop) = (acked.clone(), stop.clone());
        tokio::spawn(async move {
            let mut next = 0;
            while !stop.load(Ordering::Relaxed) {
                let ok = produce_range(&p, TOPIC, next, next + 50).await;
                acked.lock().expect("acked").extend(ok);
                next += 50;
            }
            next
        })
    };
    wait_for(30, "writes acknowledged before the cut", || {
        (acked.lock().expect("acked").len() >= 200).then_some(())
    });

    // Cut the leader off. A write sent to it now is appended to its log alone: it must not be
    // acknowledged, and it is the divergent data the node has to drop later.
    net.isolate(cut);
    let cut_at = Instant::now();
    let err = produce_raw(&nodes[cut - 1], TOPIC, -1, 3000);
    eprintln!("acks=all write to the cut-off leader {cut}: error code {err:?}");
    assert!(
        err.is_some_and(|code| code != 0),
        "an acks=all write to the cut-off leader is not acknowledged (got {err:?})"
    );
    let (cut_leo, _) = offsets(&nodes[cut - 1], TOPIC).expect("cut-off node's offsets");

    // The rest of the cluster moves on without it.
    let after = wait_for(60, "a new leader among the connected nodes", || {
        partition_info(&nodes[others[0] - 1], TOPIC)
            .filter(|i| i.leader > 0 && i.leader as usize != cut && !i.isr.contains(&(cut as i32)))
    });
    eprintln!(
        "new leader {} (epoch {}) {:?} after the cut; isr {:?}",
        after.leader,
        after.epoch,
        cut_at.elapsed(),
        after.isr
    );
    assert!(after.epoch > before.epoch);
    let acked_at_failover = acked.lock().expect("acked").len();
    wait_for(60, "writes acknowledged by the new leader", || {
        (acked.lock().expect("acked").len() >= acked_at_failover + 200).then_some(())
    });

    // Heal: the old leader learns the new epoch, truncates its lone writes and rejoins.
    net.heal(cut);
    let healed_at = Instant::now();
    let back = wait_for(60, "the cut-off node back in the ISR", || {
        partition_info(&nodes[others[0] - 1], TOPIC).filter(|i| i.isr.len() == 3)
    });
    eprintln!(
        "node {cut} rejoined the ISR {:?} after the heal (leader {}, isr {:?})",
        healed_at.elapsed(),
        back.leader,
        back.isr
    );
    stop.store(true, Ordering::Relaxed);
    let sent = writer.await.expect("writer");
    let acked = acked.lock().expect("acked").clone();
    let end = wait_same_offsets(&nodes.iter().collect::<Vec<_>>(), TOPIC, 1);

    // Make the old leader lead again (it is first in replica order and in the ISR), so the
    // check below reads *its* log: it must hold exactly what the cluster acknowledged.
    let leader_now = back.leader as usize;
    if leader_now != cut {
        nodes[leader_now - 1].stop();
        wait_for(60, "the healed node leading again", || {
            partition_info(&nodes[cut - 1], TOPIC).filter(|i| i.leader as usize == cut)
        });
    }
    let got = read_all(&nodes[cut - 1].bootstrap, TOPIC, end);
    assert_eq!(got.len() as i64, end, "offsets are dense");
    assert!(!acked.is_empty());
    let values = assert_acked_exactly_once(&got, &acked);
    eprintln!(
        "acknowledged {} of {sent} records sent; the cut-off node's log end was {cut_leo} \
         alone and is {end} after rejoining; it now serves {} records",
        acked.len(),
        values.len()
    );
}
