// Machine facts, quiet-machine waits, CPU and RSS sampling, and the broker process. Included into main.rs (one bench crate, split only for reading).

/// Other processes' share of the machine under which a trial may start.
const QUIET_THRESHOLD: f64 = 0.10;
/// Longest wait for a quiet machine before a trial starts anyway.
const QUIET_MAX_WAIT: Duration = Duration::from_secs(20);

/// Waits before each trial until the rest of the machine is quiet (the box is shared), and
/// counts how long that took.
struct Quiet {
    clk_tck: f64,
    cpus: f64,
    waits: u32,
    waited: Duration,
    gave_up: u32,
}

impl Quiet {
    fn new(clk_tck: f64) -> Quiet {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        Quiet {
            clk_tck,
            cpus,
            waits: 0,
            waited: Duration::ZERO,
            gave_up: 0,
        }
    }

    /// Returns once other processes (not this one, not the broker) used less than
    /// QUIET_THRESHOLD of the machine over two consecutive 500 ms windows.
    fn wait(&mut self, broker_stat: &str) {
        let t0 = Instant::now();
        let window = Duration::from_millis(500);
        let mut calm = 0;
        self.waits += 1;
        while calm < 2 {
            if t0.elapsed() >= QUIET_MAX_WAIT {
                self.gave_up += 1;
                progress("  machine still busy: starting the trial anyway");
                break;
            }
            let snap = CpuSnapshot::take(broker_stat);
            std::thread::sleep(window);
            let other = snap.since(broker_stat, self.clk_tck).other;
            if other / (window.as_secs_f64() * self.cpus) < QUIET_THRESHOLD {
                calm += 1;
            } else {
                calm = 0;
            }
        }
        self.waited += t0.elapsed();
    }
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    sum / n as f64
}

/// `perf record --call-graph dwarf` on the broker while alive (only with RILL_BENCH_PERF set).
struct Perf {
    child: Option<Child>,
}

impl Perf {
    fn start(pid: u32, out: &Path) -> Perf {
        let child = Command::new("perf")
            .args(["record", "-F", "499", "--call-graph", "dwarf,32768", "-o"])
            .arg(out)
            .args(["-p", &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match child {
            Ok(c) => {
                std::thread::sleep(Duration::from_millis(300));
                Perf { child: Some(c) }
            }
            Err(e) => {
                progress(&format!("RILL_BENCH_PERF: cannot run perf: {e}"));
                Perf { child: None }
            }
        }
    }
}

impl Drop for Perf {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-INT", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Environment

fn progress(msg: &str) {
    eprintln!("[throughput] {msg}");
}

/// `target/` (or `$CARGO_TARGET_DIR`): the bench executable lives in `<target>/release/deps/`.
fn target_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("cannot locate the bench executable");
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .expect("bench executable is not under <target>/<profile>/deps/")
}

/// The release `rill-broker`: cargo builds it for benches; built here as a last resort.
fn broker_binary() -> PathBuf {
    if let Ok(bin) = std::env::var("RILL_BROKER_BIN") {
        let bin = PathBuf::from(bin);
        assert!(
            bin.is_file(),
            "RILL_BROKER_BIN={} does not exist",
            bin.display()
        );
        return bin;
    }
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_rill-broker"));
    if !bin.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        progress(&format!(
            "{} is missing: running `{cargo} build --release -p rill-broker --bin rill-broker`",
            bin.display()
        ));
        let ok = Command::new(&cargo)
            .args([
                "build",
                "--release",
                "-p",
                "rill-broker",
                "--bin",
                "rill-broker",
            ])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            ok && bin.is_file(),
            "the bench needs the release broker at {}: build it with \
             `cargo build --release -p rill-broker --bin rill-broker`",
            bin.display()
        );
    }
    bin
}

fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|v| *v > 0.0)
        .unwrap_or(100.0)
}

fn sh(cmd: &str, args: &[&str], dir: &Path) -> Option<String> {
    let o = Command::new(cmd)
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// Incompressible-looking record value (xorshift), the same for every record.
fn payload() -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..RECORD_SIZE)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// /proc

/// utime + stime in clock ticks, from a `/proc/.../stat` file.
fn cpu_ticks(path: &str) -> u64 {
    let s = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = s
        .rsplit_once(')')
        .map(|(_, r)| r)
        .unwrap_or_else(|| panic!("unexpected format of {path}"));
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> u64 {
        f.get(i)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("unexpected format of {path}"))
    };
    field(11) + field(12)
}

fn cpu_delta(before: u64, after: u64, clk_tck: f64) -> f64 {
    after.saturating_sub(before) as f64 / clk_tck
}

/// Busy ticks of the whole machine (all CPUs), from the `cpu` line of `/proc/stat`.
fn machine_busy_ticks() -> u64 {
    let s = std::fs::read_to_string("/proc/stat").expect("cannot read /proc/stat");
    let line = s.lines().next().unwrap_or_default();
    // user nice system idle iowait irq softirq steal ...
    line.split_whitespace()
        .skip(1)
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .filter_map(|(_, v)| v.parse::<u64>().ok())
        .sum()
}

/// CPU ticks of the broker, this process and the machine at one moment.
struct CpuSnapshot {
    broker: u64,
    bench: u64,
    machine: u64,
}

/// CPU seconds between two snapshots: broker, this process (client), everything else.
struct CpuUse {
    broker: f64,
    bench: f64,
    other: f64,
}

impl CpuSnapshot {
    fn take(broker_stat: &str) -> CpuSnapshot {
        CpuSnapshot {
            broker: cpu_ticks(broker_stat),
            bench: cpu_ticks("/proc/self/stat"),
            machine: machine_busy_ticks(),
        }
    }

    fn since(&self, broker_stat: &str, clk_tck: f64) -> CpuUse {
        let now = CpuSnapshot::take(broker_stat);
        let broker = cpu_delta(self.broker, now.broker, clk_tck);
        let bench = cpu_delta(self.bench, now.bench, clk_tck);
        let machine = cpu_delta(self.machine, now.machine, clk_tck);
        CpuUse {
            broker,
            bench,
            other: (machine - broker - bench).max(0.0),
        }
    }
}

/// A `kB` field of `/proc/PID/status` (VmRSS, VmHWM); 0 if the process is gone.
fn status_kb(pid: u32, field: &str) -> u64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return 0;
    };
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Samples VmRSS every 20 ms on a thread, keeping the maximum.
struct RssSampler {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<u64>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut peak = 0;
            while !s.load(Ordering::Relaxed) {
                peak = peak.max(status_kb(pid, "VmRSS"));
                std::thread::sleep(Duration::from_millis(20));
            }
            peak.max(status_kb(pid, "VmRSS"))
        });
        RssSampler { stop, handle }
    }

    /// The peak VmRSS in kB.
    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("RSS sampler panicked")
    }
}

/// Bytes in `*.log` segment files under a directory tree.
fn dir_log_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => dir_log_bytes(&p),
                Ok(_) if p.extension().is_some_and(|x| x == "log") => {
                    e.metadata().map(|m| m.len()).unwrap_or(0)
                }
                _ => 0,
            }
        })
        .sum()
}

// ---------------------------------------------------------------------------------------------
// The broker process

struct BrokerProc {
    child: Child,
    pid: u32,
    bootstrap: String,
    http: String,
}

impl BrokerProc {
    fn start(bin: &Path, data: &Path) -> BrokerProc {
        let mut cmd = Command::new(bin);
        for o in [
            "listeners=PLAINTEXT://127.0.0.1:0".to_string(),
            "http.listener=127.0.0.1:0".to_string(),
            format!("log.dirs={}", data.join("logs").display()),
        ] {
            cmd.arg("--override").arg(o);
        }
        cmd.env(
            "RILL_LOG",
            std::env::var("RILL_LOG").unwrap_or_else(|_| "warn".into()),
        );
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", bin.display()));
        let stdout = child.stdout.take().expect("broker stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("rill-broker ready:") {
                    let _ = tx.send(line);
                }
            }
        });
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("rill-broker did not print its ready line within 60 s");
            }
        };
        let field = |k: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(k))
                .map(str::to_string)
                .unwrap_or_else(|| panic!("ready line without {k}: {line}"))
        };
        let pid = child.id();
        progress(&format!("{line} (pid {pid})"));
        BrokerProc {
            pid,
            bootstrap: field("kafka="),
            http: field("http="),
            child,
        }
    }

    /// SIGTERM, then SIGKILL after 20 s.
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status();
        for _ in 0..400 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        progress("rill-broker ignored SIGTERM for 20 s: killing it");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for BrokerProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

async fn create_topics(bootstrap: &str, names: &[&str]) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let topics: Vec<NewTopic> = names
        .iter()
        .map(|n| NewTopic::new(n, 1, TopicReplication::Fixed(1)))
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for r in admin
        .create_topics(&topics, &opts)
        .await
        .expect("CreateTopics request failed")
    {
        if let Err((name, code)) = r {
            panic!("cannot create topic {name}: {code}");
        }
    }
}

struct RequestCount {
    total: u64,
    versions: String,
}

/// Requests of one API the broker counted, from `/metrics`, e.g. `1234 (v10)`.
fn scrape_requests(http: &str, api: &str) -> RequestCount {
    let body = http_get(http, "/metrics").unwrap_or_default();
    let label = format!("request=\"{api}\"");
    let mut total = 0;
    let mut versions = Vec::new();
    for line in body.lines() {
        if !line.starts_with("kafka_network_requestmetrics_requests_total{")
            || !line.contains(&label)
        {
            continue;
        }
        let n: u64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0) as u64;
        total += n;
        if let Some(v) = line
            .split("version=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
        {
            versions.push(format!("v{v}"));
        }
    }
    RequestCount {
        total,
        versions: if versions.is_empty() {
            "?".into()
        } else {
            versions.join(",")
        },
    }
}

/// Minimal HTTP/1.1 GET (keeps an HTTP client out of the dev-dependencies).
fn http_get(base: &str, path: &str) -> Option<String> {
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    // Chunk-size lines, if any, never start with the metric name searched for.
    resp.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

// ---------------------------------------------------------------------------------------------
// Produce throughput
