// The librdkafka workloads: produce throughput, consume throughput, paced latency. Included into main.rs (one bench crate, split only for reading).

#[derive(Default)]
struct CountingContext {
    delivered: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for CountingContext {}

impl ProducerContext for CountingContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut first) = self.first_error.lock() {
                    first.get_or_insert_with(|| e.to_string());
                }
            }
        }
    }
}

struct ProduceResult {
    delivered: u64,
    failed: u64,
    first_error: Option<String>,
    elapsed: Duration,
    /// Filled in by the caller: Produce requests the server saw, server and client CPU s.
    requests: u64,
    server_cpu: f64,
    client_cpu: f64,
    /// CPU s used by every other process on the machine meanwhile (noise).
    other_cpu: f64,
}

impl ProduceResult {
    fn msgs_per_s(&self) -> f64 {
        self.delivered as f64 / self.elapsed.as_secs_f64()
    }
    fn mb_per_s(&self) -> f64 {
        (self.delivered * RECORD_SIZE as u64) as f64 / 1e6 / self.elapsed.as_secs_f64()
    }
}

fn produce_throughput(bootstrap: &str, topic: &str, n: u64, payload: &[u8]) -> ProduceResult {
    let producer: ThreadedProducer<CountingContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "1")
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .set("compression.type", "none")
        .set("enable.idempotence", "false")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("message.timeout.ms", "120000")
        .create_with_context(CountingContext::default())
        .expect("cannot create the producer");
    // Connect and learn the leader before the clock starts.
    producer
        .client()
        .fetch_metadata(Some(topic), Duration::from_secs(30))
        .expect("metadata before producing");
    let ctx = producer.context().clone();
    let t0 = Instant::now();
    let mut last = t0;
    let mut last_progress = (t0, 0u64);
    for i in 0..n {
        let mut rec = BaseRecord::<(), [u8]>::to(topic)
            .payload(payload)
            .partition(0);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    rec = back;
                    std::thread::sleep(Duration::from_micros(500));
                    let d = ctx.delivered.load(Ordering::Relaxed);
                    if d != last_progress.1 {
                        last_progress = (Instant::now(), d);
                    } else {
                        assert!(
                            last_progress.0.elapsed() < STALL,
                            "produce stalled: no delivery for {STALL:?} ({d} of {n} delivered)"
                        );
                    }
                }
                Err((e, _)) => panic!("send failed: {e}"),
            }
        }
        if i & 4095 == 0 && last.elapsed() >= Duration::from_secs(1) {
            last = Instant::now();
            progress(&format!(
                "  sent {i}, delivered {} after {:.1} s",
                ctx.delivered.load(Ordering::Relaxed),
                t0.elapsed().as_secs_f64()
            ));
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .expect("flush did not finish within 120 s");
    let elapsed = t0.elapsed();
    let r = ProduceResult {
        delivered: ctx.delivered.load(Ordering::Relaxed),
        failed: ctx.failed.load(Ordering::Relaxed),
        first_error: ctx.first_error.lock().ok().and_then(|e| e.clone()),
        elapsed,
        requests: 0,
        server_cpu: 0.0,
        client_cpu: 0.0,
        other_cpu: 0.0,
    };
    progress(&format!(
        "  {} delivered, {} failed in {:.2} s: {:.0} msgs/s, {:.1} MB/s",
        r.delivered,
        r.failed,
        elapsed.as_secs_f64(),
        r.msgs_per_s(),
        r.mb_per_s()
    ));
    r
}

// ---------------------------------------------------------------------------------------------
// Consume throughput

struct ConsumeResult {
    value_bytes: u64,
    elapsed: Duration,
    /// Filled in by the caller: Fetch requests the broker saw, broker and client CPU s.
    requests: u64,
    server_cpu: f64,
    client_cpu: f64,
    /// CPU s used by every other process on the machine meanwhile (noise).
    other_cpu: f64,
}

fn consume_all(bootstrap: &str, topic: &str, n: u64) -> ConsumeResult {
    // librdkafka's assign() needs a group.id; with assign() it never joins the group, and
    // nothing is committed.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "rill-bench-assign-only")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760")
        .set("receive.message.max.bytes", "104857600")
        .set("queued.max.messages.kbytes", "262144")
        .create()
        .expect("cannot create the consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("topic partition list");
    let t0 = Instant::now();
    consumer.assign(&tpl).expect("assign");
    let (mut records, mut value_bytes) = (0u64, 0u64);
    let mut last_msg = Instant::now();
    let mut last_progress = t0;
    while records < n {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                records += 1;
                value_bytes += m.payload_len() as u64;
                last_msg = Instant::now();
            }
            Some(Err(e)) => panic!("consume error after {records} records: {e}"),
            None => assert!(
                last_msg.elapsed() < STALL,
                "consume stalled: nothing for {STALL:?} after {records} of {n} records"
            ),
        }
        if records & 65535 == 0 && last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            progress(&format!(
                "  consumed {records} after {:.1} s",
                t0.elapsed().as_secs_f64()
            ));
        }
    }
    let elapsed = t0.elapsed();
    progress(&format!(
        "  {records} records, {value_bytes} value bytes in {:.2} s: {:.1} MB/s",
        elapsed.as_secs_f64(),
        value_bytes as f64 / 1e6 / elapsed.as_secs_f64()
    ));
    ConsumeResult {
        value_bytes,
        elapsed,
        requests: 0,
        server_cpu: 0.0,
        client_cpu: 0.0,
        other_cpu: 0.0,
    }
}

// ---------------------------------------------------------------------------------------------
// Latency

/// Per message: (index, scheduled send time, actual send time).
type Stamp = Box<(u64, Instant, Instant)>;

#[derive(Default)]
struct LatencyContext {
    /// (index, send→ack ns, schedule→ack ns)
    samples: Mutex<Vec<(u64, u64, u64)>>,
    failed: AtomicU64,
}

impl ClientContext for LatencyContext {}

impl ProducerContext for LatencyContext {
    type DeliveryOpaque = Stamp;

    fn delivery(&self, result: &DeliveryResult<'_>, stamp: Stamp) {
        let now = Instant::now();
        let (i, sched, sent) = *stamp;
        if result.is_err() {
            self.failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let ns = |t: Instant| now.duration_since(t).as_nanos() as u64;
        if let Ok(mut s) = self.samples.lock() {
            s.push((i, ns(sent), ns(sched)));
        }
    }
}

struct LatencyResult {
    /// Sorted nanoseconds.
    send_to_ack: Vec<u64>,
    sched_to_ack: Vec<u64>,
    achieved_rate: f64,
    max_lateness: Duration,
    failed: u64,
}

fn produce_latency(bootstrap: &str, payload: &[u8]) -> LatencyResult {
    let producer: ThreadedProducer<LatencyContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "1")
        .set("linger.ms", "0")
        .set("compression.type", "none")
        .set("enable.idempotence", "false")
        .set("socket.nagle.disable", "true")
        .set("message.timeout.ms", "30000")
        .create_with_context(LatencyContext::default())
        .expect("cannot create the latency producer");
    producer
        .client()
        .fetch_metadata(Some(LATENCY_TOPIC), Duration::from_secs(30))
        .expect("metadata before the latency phase");
    let ctx = producer.context().clone();
    let interval = Duration::from_nanos(1_000_000_000 / LATENCY_RATE);
    let warmup = LATENCY_RATE * LATENCY_WARMUP.as_secs();
    let total = warmup + LATENCY_RATE * LATENCY_MEASURED.as_secs();
    let start = Instant::now() + Duration::from_millis(10);
    let mut max_lateness = Duration::ZERO;
    let mut next_progress = start + Duration::from_secs(1);
    for i in 0..total {
        let sched = start + interval * i as u32;
        let now = Instant::now();
        if sched > now {
            std::thread::sleep(sched - now);
        }
        let sent = Instant::now();
        if i >= warmup {
            max_lateness = max_lateness.max(sent - sched);
        }
        let rec = BaseRecord::<(), [u8], Stamp>::with_opaque_to(
            LATENCY_TOPIC,
            Box::new((i, sched, sent)),
        )
        .payload(payload)
        .partition(0);
        if let Err((e, _)) = producer.send(rec) {
            panic!("latency send {i} failed: {e}");
        }
        if sent >= next_progress {
            next_progress += Duration::from_secs(1);
            progress(&format!(
                "  sent {i}, acked {}",
                ctx.samples.lock().map(|s| s.len()).unwrap_or(0)
            ));
        }
    }
    let sent_secs = start.elapsed().as_secs_f64();
    producer
        .flush(Duration::from_secs(30))
        .expect("latency flush did not finish within 30 s");
    drop(producer);
    let samples = std::mem::take(&mut *ctx.samples.lock().expect("latency samples"));
    let measured: Vec<&(u64, u64, u64)> = samples.iter().filter(|s| s.0 >= warmup).collect();
    let mut send_to_ack: Vec<u64> = measured.iter().map(|s| s.1).collect();
    let mut sched_to_ack: Vec<u64> = measured.iter().map(|s| s.2).collect();
    send_to_ack.sort_unstable();
    sched_to_ack.sort_unstable();
    let r = LatencyResult {
        achieved_rate: total as f64 / sent_secs,
        send_to_ack,
        sched_to_ack,
        max_lateness,
        failed: ctx.failed.load(Ordering::Relaxed),
    };
    progress(&format!(
        "  p50 {:.3} ms, p99 {:.3} ms, p999 {:.3} ms (send→ack, {} samples)",
        pct_ms(&r.send_to_ack, 0.5),
        pct_ms(&r.send_to_ack, 0.99),
        pct_ms(&r.send_to_ack, 0.999),
        r.send_to_ack.len()
    ));
    r
}

/// Nearest-rank percentile of sorted nanoseconds, in milliseconds.
fn pct_ms(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1e6
}

// ---------------------------------------------------------------------------------------------
// The ack-only server (client-bound ceiling)

/// Records rdkafka_performance sends per run: 1 s of warm-up at [`LATENCY_RATE`] (left out of
/// the figures) and [`LATENCY_MEASURED`] measured.
fn perf_tool_records() -> u64 {
    LATENCY_RATE * (LATENCY_WARMUP + LATENCY_MEASURED).as_secs()
}

/// librdkafka's own `rdkafka_performance` in latency mode (`-l`), the tool the latency target
/// was first measured with: produce call to delivery report, per message, in microseconds
/// (its `-A` file), paced by its `-r` rate limiter. Returns the measured records' latencies
/// in nanoseconds, sorted, or why the run failed.
fn rdkafka_performance_latency(tool: &Path, bootstrap: &str, dir: &Path) -> Result<Vec<u64>, String> {
    let out = dir.join(format!("rdkafka-performance-{}.txt", std::process::id()));
    let status = Command::new(tool)
        .args(["-P", "-t", LATENCY_TOPIC, "-p", "0", "-b", bootstrap])
        .args(["-s", &RECORD_SIZE.to_string()])
        .args(["-r", &LATENCY_RATE.to_string()])
        .args(["-c", &perf_tool_records().to_string()])
        .args(["-a", "1", "-l", "-A"])
        .arg(&out)
        .args(["-X", "linger.ms=0", "-X", "socket.nagle.disable=true"])
        .args(["-X", "enable.idempotence=false", "-X", "compression.type=none"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run {}: {e}", tool.display()))?;
    let text = std::fs::read_to_string(&out).map_err(|e| format!("no -A file: {e}"))?;
    let _ = std::fs::remove_file(&out);
    if !status.success() {
        return Err(format!("rdkafka_performance exited with {status}"));
    }
    let warmup = (LATENCY_RATE * LATENCY_WARMUP.as_secs()) as usize;
    let mut ns: Vec<u64> = text
        .lines()
        .skip(warmup)
        .filter_map(|l| l.trim().parse::<u64>().ok())
        .map(|us| us * 1_000)
        .collect();
    ns.sort_unstable();
    progress(&format!(
        "  rdkafka_performance: p50 {:.3} ms, p99 {:.3} ms, p999 {:.3} ms ({} samples)",
        pct_ms(&ns, 0.5),
        pct_ms(&ns, 0.99),
        pct_ms(&ns, 0.999),
        ns.len()
    ));
    Ok(ns)
}
