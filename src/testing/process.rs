//! Child processes for benchmarks: a kill-on-drop guard, a free port, and a process' CPU time,
//! run-queue wait, memory and open files read from `/proc/<pid>`, with a sampler of its resident memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// A child process killed (and reaped) when dropped.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago; 0 (any port) if none could be bound.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_or(0, |a| a.port())
}

/// Open file descriptors of process `pid`; 0 when unreadable.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// CPU seconds (user + system) used so far by process `pid`; 0 when unreadable.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after `) state`.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|v| v.parse::<u64>().ok()))
        .sum();
    ticks as f64 / clock_ticks()
}

/// Seconds the threads of process `pid` now alive have spent runnable but waiting for a CPU
/// (the second field of `/proc/<pid>/task/<tid>/schedstat`): how much a busy machine
/// delayed it. 0 when unreadable.
pub fn run_queue_wait_seconds(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    let nanos: u64 = tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum();
    nanos as f64 / 1e9
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux unless told otherwise).
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// A `/proc/<pid>/status` field in KiB (`VmRSS`, `VmHWM`); 0 when unreadable.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Samples a process' resident memory on a thread until dropped; keeps the newest and the
/// largest sample.
pub struct RssSampler {
    max_kib: Arc<AtomicU64>,
    last_kib: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl RssSampler {
    /// Starts sampling `pid` every `every`.
    pub fn start(pid: u32, every: Duration) -> Self {
        let max_kib = Arc::new(AtomicU64::new(0));
        let last_kib = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (max, last, done) = (max_kib.clone(), last_kib.clone(), stop.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let rss = status_kib(pid, "VmRSS");
                last.store(rss, Ordering::Relaxed);
                max.fetch_max(rss, Ordering::Relaxed);
                std::thread::sleep(every);
            }
        });
        Self {
            max_kib,
            last_kib,
            stop,
        }
    }

    /// The largest sample so far, MiB.
    pub fn max_mib(&self) -> f64 {
        self.max_kib.load(Ordering::Relaxed) as f64 / 1024.0
    }

    /// The newest sample, MiB.
    pub fn last_mib(&self) -> f64 {
        self.last_kib.load(Ordering::Relaxed) as f64 / 1024.0
    }

    /// Forgets the largest sample (to measure a phase on its own).
    pub fn reset_max(&self) {
        self.max_kib
            .store(self.last_kib.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        let rss = status_kib(me, "VmRSS");
        assert!(
            rss > 100 && rss <= status_kib(me, "VmHWM"),
            "VmRSS {rss} KiB"
        );
        assert_eq!(status_kib(me, "NoSuchField"), 0);
        // Spinning shows up as CPU time (slowly on a busy machine: up to 30 s of wall time).
        let start = cpu_seconds(me);
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while cpu_seconds(me) - start < 0.05 {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "CPU time stays {start}"
            );
            for _ in 0..1_000_000 {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        assert_eq!(cpu_seconds(u32::MAX), 0.0);
    }

    #[test]
    fn samples_until_dropped() {
        let sampler = RssSampler::start(std::process::id(), Duration::from_millis(10));
        std::thread::sleep(Duration::from_millis(100));
        assert!(sampler.last_mib() > 0.1 && sampler.max_mib() >= sampler.last_mib());
    }
}
