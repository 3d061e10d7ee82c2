//! The shared client library (`rill-client`) against a real `rill-broker` process:
//! what the CLI tests do not reach (per-item results, retries, connection reuse).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::BrokerProc;
use rill_client::{ClientError, Cluster, ConnectionConfig, NewTopic, OffsetSpec, TopicPartition};

fn config() -> ConnectionConfig {
    ConnectionConfig {
        client_id: "client-test".into(),
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(10),
        ..ConnectionConfig::default()
    }
}

#[tokio::test]
async fn cluster_admin_round_trip() {
    let b = BrokerProc::start(&[
        "group.initial.rebalance.delay.ms=0",
        "offsets.topic.num.partitions=3",
    ]);
    let c = Cluster::connect(&b.bootstrap, config())
        .await
        .expect("connect");
    let brokers: Vec<i32> = c.brokers().into_iter().map(|n| n.node_id).collect();
    assert_eq!(brokers, vec![1]);
    assert_eq!(c.controller_id(), Some(1));
    assert!(c.cluster_id().is_some_and(|id| !id.is_empty()));

    // Batched creation reports each topic on its own.
    let topics = [
        NewTopic {
            name: "a".into(),
            partitions: Some(2),
            ..NewTopic::default()
        },
        NewTopic {
            name: "b".into(),
            configs: vec![("retention.ms".into(), "never".into())],
            ..NewTopic::default()
        },
    ];
    let results = c.create_topics(&topics).await.expect("create");
    assert_eq!(results.len(), 2);
    assert!(results[0].1.is_ok(), "{results:?}");
    let err = results[1].1.as_ref().expect_err("invalid config");
    assert!(matches!(err, ClientError::Kafka { code: 40, .. }), "{err}");
    assert!(err.to_string().contains("retention.ms"), "{err}");
    let again = c.create_topics(&topics[..1]).await.expect("create");
    assert!(
        matches!(again[0].1, Err(ClientError::Kafka { code: 36, .. })),
        "{again:?}"
    );

    // Metadata of a missing topic carries the error; it is not auto-created.
    let md = c
        .describe_topics(&["a".into(), "missing".into()])
        .await
        .expect("metadata");
    assert_eq!(md.len(), 2);
    let a = md.iter().find(|t| t.name == "a").expect("a");
    assert!(a.error().is_ok() && a.partitions.len() == 2 && !a.topic_id.is_nil());
    let missing = md.iter().find(|t| t.name == "missing").expect("missing");
    assert!(missing.error().is_err());
    assert!(c
        .list_topics()
        .await
        .expect("list")
        .iter()
        .all(|t| t.name != "missing"));

    // Offsets of an empty partition; an unknown partition is an error, not a hang.
    let tps = [TopicPartition::new("a", 0), TopicPartition::new("a", 1)];
    for spec in [
        OffsetSpec::Earliest,
        OffsetSpec::Latest,
        OffsetSpec::Timestamp(0),
    ] {
        let o = c.list_offsets(&tps, spec).await.expect("list offsets");
        assert_eq!(o.len(), 2);
        let expected = if spec == OffsetSpec::Timestamp(0) {
            -1
        } else {
            0
        };
        assert!(o.values().all(|o| o.offset == expected), "{spec:?}: {o:?}");
    }
    let err = c
        .list_offsets(&[TopicPartition::new("a", 7)], OffsetSpec::Latest)
        .await
        .expect_err("no partition 7");
    assert!(err.to_string().contains("a-7"), "{err}");

    // Groups: coordinator, commit, fetch, describe, delete.
    assert_eq!(c.coordinator("g").await.expect("coordinator"), 1);
    let offsets: BTreeMap<TopicPartition, i64> = tps.iter().cloned().map(|tp| (tp, 0)).collect();
    c.commit_offsets("g", &offsets).await.expect("commit");
    let committed = c.committed_offsets("g", None).await.expect("fetch");
    assert_eq!(committed.len(), 2);
    assert!(committed.values().all(|o| o.offset == 0));
    let only = c
        .committed_offsets("g", Some(&tps[..1]))
        .await
        .expect("fetch one");
    assert_eq!(only.keys().collect::<Vec<_>>(), vec![&tps[0]]);
    let g = c.describe_group("g").await.expect("describe");
    assert_eq!(g.state, "Empty");
    assert!(g.is_inactive() && g.members.is_empty());
    let listed = c.list_groups().await.expect("list groups");
    assert!(listed.iter().any(|l| l.group_id == "g"), "{listed:?}");
    let deleted = c
        .delete_groups(&["g".into(), "never-existed".into()])
        .await
        .expect("delete groups");
    assert!(deleted[0].1.is_ok(), "{deleted:?}");
    assert!(
        matches!(deleted[1].1, Err(ClientError::Kafka { code: 69, .. })),
        "{deleted:?}"
    );

    // Deleting reports per topic too.
    let res = c
        .delete_topics(&["a".into(), "missing".into()])
        .await
        .expect("delete");
    assert!(res[0].1.is_ok(), "{res:?}");
    assert!(
        matches!(res[1].1, Err(ClientError::Kafka { code: 3, .. })),
        "{res:?}"
    );
}

#[tokio::test]
async fn connections_are_replaced_after_the_broker_restarts() {
    let mut b = BrokerProc::start(&[]);
    let c = Cluster::connect(&b.bootstrap, config())
        .await
        .expect("connect");
    c.metadata(None).await.expect("metadata");
    b.kill9();
    // The broker is gone: a bounded, typed failure, not a hang.
    let err = c.metadata(None).await.expect_err("broker is down");
    assert!(
        matches!(
            err,
            ClientError::Io { .. } | ClientError::NoBrokerReachable(_)
        ),
        "{err}"
    );
    let err = c.metadata(None).await.expect_err("still down");
    assert!(matches!(err, ClientError::NoBrokerReachable(_)), "{err}");
    // Back on the same port: the broken connection is replaced on next use.
    b.restart_same_port();
    let md = c.metadata(None).await.expect("metadata after restart");
    assert_eq!(md.brokers.len(), 1);
}

/// One `Cluster` shared by tasks without a lock (`&self`), connecting lazily: a dead first
/// bootstrap address costs one refused dial, requests from many tasks run at once, and the
/// client needs no reconnect call from its users.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_shared_by_tasks_survives_a_dead_bootstrap_address() {
    let b = BrokerProc::start(&[]);
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    // Nothing listens there any more: the first bootstrap server refuses.
    let list = format!("{dead},{}", b.bootstrap);
    let c = std::sync::Arc::new(Cluster::new(&list, config()).expect("a well-formed list"));
    assert!(
        c.brokers().is_empty(),
        "nothing is dialled before the first request"
    );
    c.create_topics(&[NewTopic {
        name: "shared".into(),
        partitions: Some(2),
        replication_factor: Some(1),
        configs: vec![],
    }])
    .await
    .expect("create")
    .into_iter()
    .for_each(|(n, r)| r.unwrap_or_else(|e| panic!("{n}: {e}")));
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(async move {
                let tps = [TopicPartition::new("shared", i % 2)];
                c.list_offsets(&tps, OffsetSpec::Latest)
                    .await
                    .map(|m| m.len())
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.expect("task").expect("list offsets"), 1);
    }
    assert_eq!(c.brokers().len(), 1);
    assert!(c.cluster_id().is_some());
    assert!(
        Cluster::new("no-port", config()).is_err(),
        "a malformed list is refused at once"
    );
}
