//! What the benchmarks need to know about the machine (Linux `/proc`): peak
//! memory, the CPU model, and whether anything else is using the CPUs.

use std::time::{Duration, Instant};

/// Peak resident set size of this process in MiB (`VmHWM`), 0 where unknown.
pub fn peak_rss_mb() -> f64 {
    status_kb("VmHWM:").map_or(0.0, |kb| kb as f64 / 1024.0)
}

fn status_kb(key: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].trim().trim_end_matches("kB").trim().parse().ok()
}

/// The CPU's model name with its family and model numbers (virtual machines often
/// show a bare "AMD EPYC" for Zen 3, 4 and 5 alike, whose speeds differ).
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| model_from_cpuinfo(&t))
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// `"NAME, family F model M"` from the first processor of a `/proc/cpuinfo` text
/// (without the numbers where they are missing).
fn model_from_cpuinfo(text: &str) -> Option<String> {
    let field = |key: &str| {
        let line = text.lines().find(|l| l.split(':').next().is_some_and(|k| k.trim() == key))?;
        Some(line.split_once(':')?.1.trim().to_string())
    };
    let name = field("model name")?;
    Some(match (field("cpu family"), field("model")) {
        (Some(family), Some(model)) => format!("{name}, family {family} model {model}"),
        _ => name,
    })
}

/// Logical CPUs of the machine.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `(busy, total)` clock ticks of all CPUs since boot.
pub fn machine_ticks() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let v: Vec<u64> = text.lines().next()?.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let total: u64 = v.iter().sum();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// CPU ticks (user + system) this process has used.
pub fn own_ticks() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) close with ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Clock ticks per second of `/proc` (`USER_HZ`, 100 on every Linux port).
pub const TICKS_PER_S: f64 = 100.0;

/// Share of all CPUs busy over `window`.
pub fn busy_fraction(window: Duration) -> Option<f64> {
    let (b0, t0) = machine_ticks()?;
    std::thread::sleep(window);
    let (b1, t1) = machine_ticks()?;
    Some((b1 - b0) as f64 / (t1 - t0).max(1) as f64)
}

/// Waits up to `max_wait` for the machine to be nearly idle (< 10 % busy);
/// returns the seconds waited and the last busy fraction.
pub fn wait_quiet(max_wait: Duration) -> (f64, f64) {
    let start = Instant::now();
    loop {
        let busy = busy_fraction(Duration::from_secs(2)).unwrap_or(0.0);
        if busy < 0.10 || start.elapsed() >= max_wait {
            return (start.elapsed().as_secs_f64(), busy);
        }
    }
}

/// Measures the share of the machine's CPU time that other processes used while `f` ran.
pub fn others_during<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let (before, own_before, start) = (machine_ticks(), own_ticks(), Instant::now());
    let out = f();
    let wall = start.elapsed().as_secs_f64();
    let share = match (before, machine_ticks(), own_before, own_ticks()) {
        (Some((b0, _)), Some((b1, _)), Some(o0), Some(o1)) => {
            let others = (b1 - b0) as f64 - (o1 - o0) as f64;
            (others / TICKS_PER_S / (wall * cpus() as f64)).max(0.0)
        }
        _ => f64::NAN,
    };
    (out, share)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_names_its_family_and_number() {
        let zen4 = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\nmodel name\t: AMD EPYC\n\nprocessor\t: 1\ncpu family\t: 26\n";
        assert_eq!(model_from_cpuinfo(zen4).as_deref(), Some("AMD EPYC, family 25 model 17"));
        assert_eq!(model_from_cpuinfo("model name\t: Some CPU\n").as_deref(), Some("Some CPU"));
        assert_eq!(model_from_cpuinfo("processor\t: 0\n"), None);
    }
}
