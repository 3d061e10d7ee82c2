// Included by main.rs: the same workload against a baseline broker binary and this build's,
// trials alternating, in one run (`RILL_BASELINE_BROKER_BIN`), so a change is judged against
// what it replaced on the same machine at the same time.

/// Produce, consume and paced-latency trials on `baseline` and `current`, alternating; the
/// report section comparing them.
fn compare_with_baseline(
    baseline: &Path,
    current: &Path,
    bench_dir: &Path,
    records: u64,
    trials: usize,
    payload: &[u8],
    quiet: &mut Quiet,
) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut runs = Vec::new();
    for (name, bin) in [("baseline", baseline), ("this build", current)] {
        let data = tempfile::Builder::new()
            .prefix("throughput-compare-")
            .tempdir_in(bench_dir)
            .expect("data dir");
        let proc = BrokerProc::start(bin, data.path());
        let topics: Vec<String> = (1..=trials).map(|k| format!("compare-{k}")).collect();
        let mut names: Vec<&str> = topics.iter().map(String::as_str).collect();
        names.push(LATENCY_TOPIC);
        rt.block_on(create_topics(&proc.bootstrap, &names));
        runs.push((name, bin.to_path_buf(), proc, data, topics, Vec::new(), Vec::new()));
    }
    for k in 0..trials {
        for (name, _, proc, _, topics, produced, _) in runs.iter_mut() {
            progress(&format!("compare: produce trial {}/{trials}: {name}", k + 1));
            quiet.wait(&format!("/proc/{}/stat", proc.pid));
            produced.push(produce_throughput(&proc.bootstrap, &topics[k], records, payload));
        }
    }
    for k in 0..trials {
        for (name, _, proc, _, topics, produced, consumed) in runs.iter_mut() {
            progress(&format!("compare: consume trial {}/{trials}: {name}", k + 1));
            quiet.wait(&format!("/proc/{}/stat", proc.pid));
            consumed.push(consume_all(&proc.bootstrap, &topics[k], produced[k].delivered));
        }
    }
    let mut latencies = Vec::new();
    for (name, _, proc, _, _, _, _) in runs.iter_mut() {
        progress(&format!("compare: paced latency: {name}"));
        quiet.wait(&format!("/proc/{}/stat", proc.pid));
        latencies.push(produce_latency(&proc.bootstrap, payload));
    }
    let mut out = String::new();
    let _ = writeln!(out, "\n## 7. Against a baseline binary, trials alternating\n");
    let _ = writeln!(out, "| broker | binary | produce msgs/s (median) | trials | consume MB/s (median) | latency send→ack p50 / p99 / p999 ms | peak RSS MiB (VmHWM) |");
    let _ = writeln!(out, "| --- | --- | ---: | --- | ---: | --- | ---: |");
    for ((name, bin, proc, _, _, produced, consumed), lat) in runs.iter_mut().zip(&latencies) {
        let rates: Vec<f64> = produced.iter().map(ProduceResult::msgs_per_s).collect();
        let c_rates: Vec<f64> = consumed
            .iter()
            .map(|c| c.value_bytes as f64 / 1e6 / c.elapsed.as_secs_f64())
            .collect();
        let _ = writeln!(
            out,
            "| {name} | `{}` | **{:.0}** | {} | **{:.1}** | {:.3} / {:.3} / {:.3} | {:.1} |",
            bin.display(),
            median(&rates),
            rates.iter().map(|x| format!("{x:.0}")).collect::<Vec<_>>().join(" / "),
            median(&c_rates),
            pct_ms(&lat.send_to_ack, 0.50),
            pct_ms(&lat.send_to_ack, 0.99),
            pct_ms(&lat.send_to_ack, 0.999),
            status_kb(proc.pid, "VmHWM") as f64 / 1024.0
        );
        proc.stop();
    }
    out
}
