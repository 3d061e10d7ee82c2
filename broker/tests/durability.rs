//! Acknowledged writes survive `kill -9`, and a damaged tail is repaired at start.

mod common;

use std::time::Duration;

use common::BrokerProc;
use rdkafka::config::ClientConfig;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};

const T: Duration = Duration::from_secs(20);

async fn produce_n(b: &BrokerProc, topic: &str, from: usize, n: usize) -> Vec<i64> {
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &b.bootstrap)
        .set("acks", "all")
        .set("linger.ms", "2")
        // Batches must fit the small test segments (a larger batch is RECORD_LIST_TOO_LARGE).
        .set("batch.size", "16384")
        .create()
        .expect("producer");
    // send_result enqueues at once, so records are pipelined as a real producer would.
    let futs: Vec<_> = (from..from + n)
        .map(|i| {
            p.send_result(FutureRecord::<(), _>::to(topic).payload(&format!("record-{i}")))
                .map_err(|(e, _)| e)
                .expect("enqueued")
        })
        .collect();
    let mut offsets = Vec::new();
    for f in futs {
        offsets.push(
            f.await
                .expect("not cancelled")
                .expect("acknowledged")
                .offset,
        );
    }
    offsets
}

fn read_all(b: &BrokerProc, topic: &str, n: usize) -> Vec<(i64, String)> {
    let c = common::checks::reader_from_start(&b.bootstrap, topic);
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while out.len() < n && std::time::Instant::now() < deadline {
        if let Some(m) = c.poll(Duration::from_millis(200)) {
            let m = m.expect("message");
            out.push((
                m.offset(),
                String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string(),
            ));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_kill_9() {
    const N: usize = 20_000;
    let mut b = BrokerProc::start(&["log.segment.bytes=65536"]);
    let offsets = produce_n(&b, "durable", 0, N).await;
    assert_eq!(offsets.len(), N);
    b.kill9();
    b.restart();
    let got = read_all(&b, "durable", N);
    assert_eq!(
        got.len(),
        N,
        "every acknowledged record is readable after kill -9"
    );
    for (i, (offset, value)) in got.iter().enumerate() {
        assert_eq!(*offset, i as i64, "same offsets");
        assert_eq!(value, &format!("record-{i}"));
    }
    assert!(
        offsets.iter().zip(0..).all(|(o, i)| *o == i),
        "acked offsets match what is read"
    );
    // The log keeps accepting writes at the right offset.
    let more = produce_n(&b, "durable", N, 10).await;
    assert_eq!(more.first().copied(), Some(N as i64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_tail_is_repaired_at_start() {
    let mut b = BrokerProc::start(&[]);
    produce_n(&b, "tail", 0, 100).await;
    b.kill9();
    // Simulate a torn write: append half a batch header of garbage to the active segment.
    let seg = b
        .data
        .join("logs")
        .join("tail-0")
        .join("00000000000000000000.log");
    let good_len = std::fs::metadata(&seg).expect("segment").len();
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&seg)
            .expect("open segment");
        f.write_all(&[0, 0, 0, 0, 0, 0, 0, 100, 0, 0, 1, 0, 0, 0, 0, 0, 2, 9, 9])
            .expect("garbage");
    }
    b.restart();
    let got = read_all(&b, "tail", 100);
    assert_eq!(got.len(), 100);
    assert_eq!(
        std::fs::metadata(&seg).expect("segment").len(),
        good_len,
        "the torn tail was cut off"
    );
    let more = produce_n(&b, "tail", 100, 5).await;
    assert_eq!(more, vec![100, 101, 102, 103, 104]);
    let got = read_all(&b, "tail", 105);
    assert_eq!(got.len(), 105);
    assert_eq!(got[104].1, "record-104");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_restart_keeps_everything() {
    let mut b = BrokerProc::start(&[]);
    produce_n(&b, "clean", 0, 50).await;
    b.stop();
    b.restart();
    assert_eq!(read_all(&b, "clean", 50).len(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_producer_continues_across_a_broker_restart() {
    let mut b = BrokerProc::start(&[]);
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &b.bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "2")
        .set("message.timeout.ms", "30000")
        .create()
        .expect("producer");
    for i in 0..200 {
        p.send(
            FutureRecord::<(), _>::to("idem-restart").payload(&format!("record-{i}")),
            T,
        )
        .await
        .expect("acked");
    }
    // The broker rebuilds producer state from the log; the same producer keeps its id and
    // sequence numbers after reconnecting, and nothing is duplicated or refused.
    b.kill9();
    b.restart_same_ports();
    for i in 200..400 {
        p.send(
            FutureRecord::<(), _>::to("idem-restart").payload(&format!("record-{i}")),
            Duration::from_secs(30),
        )
        .await
        .expect("acked after restart");
    }
    let got = read_all(&b, "idem-restart", 400);
    assert_eq!(got.len(), 400);
    for (i, (offset, value)) in got.iter().enumerate() {
        assert_eq!(
            (*offset, value.as_str()),
            (i as i64, format!("record-{i}").as_str())
        );
    }
}
