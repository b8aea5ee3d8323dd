//! CPU pinning and memory figures of processes, through `/proc` and
//! `sched_setaffinity` (no `unsafe`: rustix does the system calls).

use anyhow::Context as _;
use rustix::process::Pid;
use rustix::thread::{CpuSet, sched_setaffinity};

/// The CPU the measured server (or echo server) runs on.
pub const SERVER_CPU: usize = 0;

/// The CPU the load generator runs on.
pub const LOAD_CPU: usize = 1;

/// The nice value of everything measured (servers and the load
/// generator): the highest priority, so that other work on a shared
/// machine takes less of the measured CPUs. Needs root (or
/// `CAP_SYS_NICE`); without it the suite runs at normal priority and says
/// so.
pub const NICE: i32 = -20;

/// Pins the calling thread (and the threads it starts afterwards) to `cpu`
/// at [`NICE`].
/// On a machine without that CPU the thread runs unpinned, with a note on
/// stderr.
pub fn pin_self(cpu: usize) {
    pin(None, cpu);
}

/// Pins the process `pid` (its main thread, and the threads it starts
/// afterwards) to `cpu` at [`NICE`].
pub fn pin_pid(pid: u32, cpu: usize) {
    let pid = i32::try_from(pid).ok().and_then(Pid::from_raw);
    match pid {
        Some(pid) => pin(Some(pid), cpu),
        None => eprintln!("note: cannot pin pid {pid:?}: not a process id"),
    }
}

/// The set of `cpu` alone.
pub fn only(cpu: usize) -> CpuSet {
    let mut set = CpuSet::new();
    set.set(cpu);
    set
}

/// Lets the process or thread `tid` (`None`: the calling thread) run on
/// the CPUs of `set` only, at its priority; best effort, with a note on
/// stderr.
pub fn set_cpus(tid: Option<u32>, set: &CpuSet) {
    let pid = match tid.map(|t| i32::try_from(t).ok().and_then(Pid::from_raw)) {
        None => None,
        Some(Some(pid)) => Some(pid),
        Some(None) => return eprintln!("note: cannot place {tid:?}: not a process id"),
    };
    if let Err(e) = sched_setaffinity(pid, set) {
        eprintln!("note: cannot set the CPUs of {tid:?}: {e}");
    }
}

fn pin(pid: Option<Pid>, cpu: usize) {
    if cpu >= CpuSet::MAX_CPU {
        eprintln!("note: CPU {cpu} is out of range; running unpinned");
        return;
    }
    let set = only(cpu);
    if let Err(e) = sched_setaffinity(pid, &set) {
        eprintln!("note: cannot pin to CPU {cpu}: {e}; running unpinned");
    }
    if let Err(e) = rustix::process::setpriority_process(pid, NICE) {
        eprintln!("note: cannot raise priority to nice {NICE}: {e}; running at normal priority");
    }
}

/// The resident set size of process `pid`, in bytes (`VmRSS` in
/// `/proc/PID/status`).
pub fn vm_rss(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .with_context(|| format!("no VmRSS line in {path}"))?;
    let kib: u64 = line
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .with_context(|| format!("bad VmRSS line in {path}: {line}"))?;
    Ok(kib * 1024)
}

/// CPU time (user and system) the calling thread has used, in
/// nanoseconds, from `/proc/thread-self/stat` (clock-tick resolution).
pub fn own_cpu_ns() -> Option<u64> {
    cpu_from_stat("/proc/thread-self/stat")
}

/// CPU time (user and system) process `pid` has used, in nanoseconds.
pub fn cpu_ns(pid: u32) -> Option<u64> {
    cpu_from_stat(&format!("/proc/{pid}/stat"))
}

/// CPU time every process on the machine has used (all CPUs: user,
/// system and time stolen by the hypervisor, not interrupts), in
/// nanoseconds, from `/proc/stat`.
pub fn machine_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let ticks: Vec<u64> = line.split_whitespace().filter_map(|f| f.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal guest guest_nice:
    // user, nice, system and steal. Interrupts are left out: the loopback
    // traffic of the measurement itself is handled there. Guest time is
    // already counted in user.
    let busy: u64 = [0, 1, 2, 7].iter().filter_map(|&i| ticks.get(i)).sum();
    let tick_ns = 1_000_000_000 / rustix::param::clock_ticks_per_second().max(1);
    Some(busy * tick_ns)
}

fn cpu_from_stat(path: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name, which is in parentheses and may hold
    // spaces: state is field 3, utime 14 and stime 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let tick_ns = 1_000_000_000 / rustix::param::clock_ticks_per_second().max(1);
    Some((utime + stime) * tick_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_rss_is_read_and_plausible() {
        let rss = vm_rss(std::process::id()).expect("own /proc status");
        // A running test binary holds at least its code and stack, and far
        // less than a terabyte.
        assert!(rss > 100 * 1024 && rss < (1 << 40), "rss {rss}");
    }

    #[test]
    fn cpu_time_grows_with_work() {
        let before = own_cpu_ns().expect("schedstat");
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        let after = own_cpu_ns().expect("schedstat");
        assert!(after > before, "{before} -> {after} ({x})");
        assert!(cpu_ns(std::process::id()).is_some());
    }
}
