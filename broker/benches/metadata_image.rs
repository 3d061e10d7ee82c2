//! What one committed metadata entry costs as the cluster grows (a report, not a timed test):
//! applying a partition change (an ISR shrink, what elections and replica lag produce most)
//! and building the image the state machine publishes, with topics shared between images
//! (`Arc<TopicMeta>`, copy-on-write of the one topic that changes) beside the old way of
//! publishing a deep copy of every topic and partition, in one run.
//!
//! `cargo bench -p rill-broker --bench metadata_image` writes `target/bench/metadata_image.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use rill_broker::controller::raft::command::{apply_command, MetadataCommand};
use rill_broker::metadata::{MetadataImage, PartitionMeta, TopicMeta};
use rill_broker::types::{BrokerId, LeaderEpoch};
use uuid::Uuid;

/// Partitions per topic (the shape: topics of 100 partitions).
const PER_TOPIC: usize = 100;
/// Entries committed per measurement.
const ENTRIES: usize = 200;

fn image(topics: usize) -> MetadataImage {
    let mut img = MetadataImage::default();
    for t in 0..topics {
        let name = format!("topic-{t:06}");
        let partitions = (0..PER_TOPIC)
            .map(|p| {
                let replicas: Vec<BrokerId> =
                    (0..3).map(|r| BrokerId(((p + r) % 3 + 1) as i32)).collect();
                PartitionMeta {
                    isr: replicas.clone(),
                    leader: replicas[0],
                    replicas,
                    leader_epoch: LeaderEpoch(0),
                    partition_epoch: 0,
                }
            })
            .collect();
        img.topics.insert(
            name.clone(),
            Arc::new(TopicMeta {
                name,
                id: Uuid::from_u128(t as u128 + 1),
                partitions,
                configs: BTreeMap::new(),
            }),
        );
    }
    img
}

/// What publishing cost before topics were shared: every topic and partition copied.
fn deep_copy(img: &MetadataImage) -> MetadataImage {
    let mut copy = img.clone();
    for t in copy.topics.values_mut() {
        *t = Arc::new((**t).clone());
    }
    copy
}

/// Microseconds per committed entry: apply an ISR change to a partition of a different
/// topic each time, then publish (`shared`: the image as it is now; else a deep copy).
fn per_entry(img: &mut MetadataImage, shared: bool, epoch: &mut i32) -> f64 {
    let names: Vec<String> = img.topics.keys().cloned().collect();
    let mut published = Vec::with_capacity(2);
    let t0 = Instant::now();
    for i in 0..ENTRIES {
        *epoch += 1;
        let topic = &names[i % names.len()];
        let current = img.topics[topic].partitions[0].clone();
        let mut state = current.clone();
        state.isr = if state.isr.len() == 3 {
            state.isr[..2].to_vec()
        } else {
            state.replicas.clone()
        };
        state.partition_epoch = *epoch;
        let cmd = MetadataCommand::ChangePartition {
            topic: topic.clone(),
            partition: 0,
            state,
        };
        let _ = apply_command(img, &cmd);
        let next = if shared { img.clone() } else { deep_copy(img) };
        // Keep the last published image alive, as subscribers do.
        published.push(Arc::new(next));
        if published.len() > 1 {
            published.remove(0);
        }
    }
    t0.elapsed().as_secs_f64() * 1e6 / ENTRIES as f64
}

fn main() {
    let mut report = String::from(
        "# One committed metadata entry: apply a partition change and publish the image\n\n\
         Topics of 100 partitions, RF 3; 200 entries per measurement, each changing a partition \
         of another topic; µs per entry.\n\n\
         | partitions | shared topics (now) | deep copy (before) | speed-up |\n|---|---|---|---|\n",
    );
    let mut epoch = 0;
    for topics in [10, 60, 250, 1000] {
        let mut img = image(topics);
        let deep = per_entry(&mut img, false, &mut epoch);
        let shared = per_entry(&mut img, true, &mut epoch);
        let _ = writeln!(
            report,
            "| {} | {shared:.1} | {deep:.1} | {:.0}x |",
            topics * PER_TOPIC,
            deep / shared.max(1e-9)
        );
    }
    // A snapshot serializes the whole image (the state machine's snapshot file, built on a
    // blocking thread; the payload once, wrapped with openraft's meta).
    report.push_str(
        "\n# A metadata snapshot: serialize the image (serde_json, as the snapshot file holds it)\n\n\
         | partitions | ms | MB |\n|---|---|---|\n",
    );
    for topics in [100, 250, 500, 1000] {
        let img = image(topics);
        let t0 = Instant::now();
        let bytes = serde_json::to_vec(&img).map_or(0, |v| v.len());
        let _ = writeln!(
            report,
            "| {} | {:.0} | {:.1} |",
            topics * PER_TOPIC,
            t0.elapsed().as_secs_f64() * 1e3,
            bytes as f64 / 1e6
        );
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("metadata_image.md");
    if let Err(e) = std::fs::write(&path, &report) {
        eprintln!("cannot write {}: {e}", path.display());
    }
    print!("{report}");
}
