//! Scope, filters and the cap of `/metrics`, on rendered snapshots.

use super::*;
use crate::console::snapshot::{Forecast, GroupInfo, GroupStatus, PartitionInfo, TopicInfo};

fn topic(name: &str, partitions: i32) -> TopicInfo {
    TopicInfo {
        name: name.into(),
        internal: name.starts_with("__"),
        partitions: (0..partitions)
            .map(|p| PartitionInfo {
                partition: p,
                leader: 1,
                replicas: vec![1],
                isr: vec![1],
                earliest: 0,
                latest: 10,
                size: None,
            })
            .collect(),
        min_insync_replicas: None,
        cleanup_policy: None,
    }
}

fn group(id: &str, topics: &[(&str, i32)]) -> GroupInfo {
    let partitions = topics
        .iter()
        .flat_map(|(t, n)| {
            (0..*n).map(move |p| PartitionLag {
                topic: t.to_string(),
                partition: p,
                committed: 4,
                end: 10,
                log_start: 0,
                lag: 6,
                stable_end: 10,
                stable_lag: 6,
                basis: LagBasis::Committed,
                lag_seconds: None,
                lag_seconds_method: None,
                status: GroupStatus::Ok,
                status_reason: String::new(),
                measured_at_ms: 1,
                error: None,
                owner: None,
            })
        })
        .collect();
    GroupInfo {
        group_id: id.into(),
        state: "Empty".into(),
        protocol_type: "consumer".into(),
        group_type: "classic".into(),
        epochs: None,
        protocol: String::new(),
        coordinator: 1,
        members: vec![],
        partitions,
        status: GroupStatus::Ok,
        status_reason: String::new(),
        forecast: Forecast::default(),
        error: None,
    }
}

fn snapshot() -> Snapshot {
    Snapshot {
        taken_at_ms: 1,
        topics: vec![
            topic("__consumer_offsets", 3),
            topic("a", 2),
            topic("b", 3),
            topic("c", 1),
        ],
        groups: vec![group("g2", &[("c", 1)]), group("g1", &[("a", 2), ("b", 3)])],
        ..Snapshot::default()
    }
}

/// The value of the one series whose line starts with `prefix` (name and labels).
fn value(text: &str, prefix: &str) -> Option<String> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .map(|l| l.rsplit(' ').next().unwrap_or_default().to_string())
}

#[test]
fn the_cap_leaves_whole_topics_out_and_counts_them() {
    let scope = Scope {
        max_partitions: 6,
        ..Scope::default()
    };
    let text = render(&snapshot(), &scope);
    let offset = |t: &str, p: i32| {
        value(
            &text,
            &format!("kafka_topic_partition_current_offset{{partition=\"{p}\",topic=\"{t}\"}}"),
        )
    };
    // Name order: __consumer_offsets (3) and a (2) fit, b (3) does not, c (1) does.
    assert_eq!(offset("__consumer_offsets", 2).as_deref(), Some("10"));
    assert_eq!(offset("a", 1).as_deref(), Some("10"));
    assert_eq!(offset("b", 0), None);
    assert_eq!(offset("c", 0).as_deref(), Some("10"));
    // Topic-level series stay for every topic.
    assert_eq!(
        value(&text, "kafka_topic_partitions{topic=\"b\"}").as_deref(),
        Some("3")
    );
    assert_eq!(
        value(
            &text,
            "rill_console_metrics_omitted_partitions{family=\"topic\"}"
        )
        .as_deref(),
        Some("3")
    );
    // Groups in id order: g1 (5 partitions) fits, g2 (1) fits as well.
    assert_eq!(
        value(
            &text,
            "rill_console_metrics_omitted_partitions{family=\"group\"}"
        )
        .as_deref(),
        Some("0")
    );
    let scope = Scope {
        max_partitions: 4,
        ..Scope::default()
    };
    let text = render(&snapshot(), &scope);
    // g1's 5 partitions do not fit: no per-partition series, totals still there.
    assert_eq!(
        value(
            &text,
            "kafka_consumergroup_lag{consumergroup=\"g1\",partition=\"0\",topic=\"a\"}"
        ),
        None
    );
    assert_eq!(
        value(
            &text,
            "kafka_consumergroup_lag_sum{consumergroup=\"g1\",topic=\"b\"}"
        )
        .as_deref(),
        Some("18")
    );
    assert_eq!(
        value(
            &text,
            "kafka_consumergroup_lag{consumergroup=\"g2\",partition=\"0\",topic=\"c\"}"
        )
        .as_deref(),
        Some("6")
    );
    assert_eq!(
        value(
            &text,
            "rill_console_metrics_omitted_partitions{family=\"group\"}"
        )
        .as_deref(),
        Some("5")
    );
}

#[test]
fn filters_choose_topics_and_groups_as_kafka_exporter_does() {
    let re = |s: &str| Some(Regex::new(s).expect("valid"));
    let scope = Scope {
        topics: NameFilter::new(None, re("^__")),
        groups: NameFilter::new(re("1"), None),
        ..Scope::default()
    };
    let text = render(&snapshot(), &scope);
    assert!(!text.contains("topic=\"__consumer_offsets\""), "{text}");
    assert!(
        text.contains("kafka_topic_partitions{topic=\"a\"} 2"),
        "{text}"
    );
    assert!(!text.contains("consumergroup=\"g2\""), "{text}");
    assert!(text.contains("consumergroup=\"g1\""), "{text}");
    // Unanchored, as Go's MatchString: "b" matches every name containing a b.
    let scope = Scope {
        topics: NameFilter::new(re("b"), None),
        ..Scope::default()
    };
    let text = render(&snapshot(), &scope);
    assert!(
        text.contains("kafka_topic_partitions{topic=\"b\"} 3"),
        "{text}"
    );
    assert!(
        !text.contains("kafka_topic_partitions{topic=\"a\"}"),
        "{text}"
    );
    // The group series of a filtered-out topic go too; the group's totals stay whole.
    assert!(!text.contains("kafka_consumergroup_lag_sum{consumergroup=\"g1\",topic=\"a\"}"));
    assert_eq!(
        value(
            &text,
            "rill_consumergroup_backlog_sum{consumergroup=\"g1\"}"
        )
        .as_deref(),
        Some("30")
    );
}
