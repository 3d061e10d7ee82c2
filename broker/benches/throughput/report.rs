// The Markdown report. Included into main.rs (one bench crate, split only for reading).

#[derive(Default)]
struct Report {
    text: String,
}

impl Report {
    fn line(&mut self, s: &str) {
        self.text.push_str(s);
        self.text.push('\n');
    }

    fn section(&mut self, title: &str) {
        let _ = write!(self.text, "\n## {title}\n\n");
    }

    fn header(&mut self, bin: &Path, records: u64, trials: usize, clk_tck: f64, load: &str) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let rev = sh("git", &["rev-parse", "--short=12", "HEAD"], &root)
            .unwrap_or_else(|| "unknown".into());
        let dirty = sh(
            "git",
            &["status", "--porcelain", "--untracked-files=no"],
            &root,
        )
        .is_some_and(|s| !s.is_empty());
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let model = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")?
                    .split_once(':')
                    .map(|(_, m)| m.trim())
            })
            .unwrap_or("unknown");
        let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
        let mem_total = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .map(|v| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        let load: Vec<&str> = load.split_whitespace().take(3).collect();
        self.line("# rill-broker throughput benchmark");
        self.line("");
        self.line(&format!(
            "- git: `{rev}`{}",
            if dirty {
                " (working tree has uncommitted changes)"
            } else {
                ""
            }
        ));
        self.line(&format!("- machine: {nproc} CPUs ({model}), {mem_total} RAM, Linux {kernel}; CLK_TCK {clk_tck}; load average at start {} (1/5/15 min); the machine is shared, see the \"other processes' CPU\" columns", load.join(" ")));
        self.line(&format!("- broker: `{}` (release), one node, data on local disk under target/bench/, RILL_LOG=warn", bin.display()));
        self.line(&format!(
            "- client: librdkafka {} via rdkafka 0.39, in the bench process on the same machine: client and server share the CPUs",
            rdkafka::util::get_rdkafka_version().1
        ));
        self.line(&format!(
            "- data: {records} records of {RECORD_SIZE} B values ({:.3} GiB) per trial, {trials} trials, no keys; MB = 10^6 bytes unless stated",
            (records * RECORD_SIZE as u64) as f64 / (1u64 << 30) as f64
        ));
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**missed**"
    }
}
