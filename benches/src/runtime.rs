//! The tokio runtime the benches run on, the tasks a set-up spawns on
//! it, timing on it, and the CPU time of the process.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::{Builder, Runtime};
use tokio::task::AbortHandle;

fn two_workers() -> Builder {
    let mut builder = Builder::new_multi_thread();
    builder.worker_threads(2);
    builder
}

/// A multi-thread tokio runtime with 2 workers and the io and time
/// drivers on.
pub fn runtime() -> Runtime {
    two_workers().enable_all().build().expect("a tokio runtime")
}

/// A multi-thread tokio runtime with 2 workers and no drivers: enough for
/// tasks that only wake each other.
pub fn plain_runtime() -> Runtime {
    two_workers().build().expect("a tokio runtime")
}

/// Tasks spawned for a set-up (drivers, servers), aborted when this is
/// dropped.
#[derive(Default)]
pub struct Tasks(Vec<AbortHandle>);

impl Tasks {
    /// Adds a task to abort on drop.
    pub fn push(&mut self, task: AbortHandle) {
        self.0.push(task);
    }
}

impl From<Vec<AbortHandle>> for Tasks {
    fn from(tasks: Vec<AbortHandle>) -> Tasks {
        Tasks(tasks)
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// Times `iters` runs of `work` on `target`, one after the other, within
/// one task on the runtime's workers.
pub fn timed<T, F, Fut>(rt: &Runtime, target: &Arc<T>, iters: u64, work: F) -> Duration
where
    T: Send + Sync + 'static,
    F: Fn(Arc<T>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let target = Arc::clone(target);
    rt.block_on(async move {
        tokio::spawn(async move {
            let start = Instant::now();
            for _ in 0..iters {
                work(Arc::clone(&target)).await;
            }
            start.elapsed()
        })
        .await
        .expect("bench task")
    })
}

/// CPU time (user + system) of this process so far, from
/// `/proc/self/stat` (Linux; clock ticks of 10 ms). `None` elsewhere.
pub fn cpu_time() -> Option<Duration> {
    cpu_times("self").map(|t| t.user + t.system)
}

/// User and system CPU time of one process.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuTimes {
    /// Time in the process's own code.
    pub user: Duration,
    /// Time in the kernel on its behalf (system calls, and the network
    /// stack's work done in its context).
    pub system: Duration,
}

impl CpuTimes {
    /// What was spent between `earlier` and `self`.
    pub fn since(self, earlier: CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

/// CPU times of process `pid` (a number, or `"self"`) so far, from
/// `/proc/<pid>/stat` (Linux; clock ticks of 10 ms). `None` elsewhere.
pub fn cpu_times(pid: &str) -> Option<CpuTimes> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which ends with the last ')'.
    let mut fields = stat.get(stat.rfind(')')? + 2..)?.split_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(CpuTimes {
        user: Duration::from_millis(utime * 10),
        system: Duration::from_millis(stime * 10),
    })
}

/// Context switches (voluntary and not) of this process's live threads so
/// far, summed from `/proc/self/task/*/status` (Linux). `None` elsewhere.
/// Threads that have ended are not counted; the runtime's workers live as
/// long as the runtime.
pub fn context_switches() -> Option<u64> {
    context_switches_of("self")
}

/// [`context_switches`] of process `pid` (a number, or `"self"`).
pub fn context_switches_of(pid: &str) -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let status = std::fs::read_to_string(task.ok()?.path().join("status")).ok()?;
        total += status
            .lines()
            .filter(|l| l.contains("ctxt_switches:"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum::<u64>();
    }
    Some(total)
}

/// Time the threads of a process spent on a CPU and waiting for one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedTimes {
    /// Time on a CPU.
    pub running: Duration,
    /// Time runnable but waiting on a run queue: woken (or preempted) and
    /// not yet running, what a busy machine adds to a wake-up.
    pub waiting: Duration,
    /// Times a thread was put on a CPU.
    pub slices: u64,
}

impl SchedTimes {
    /// What was spent between `earlier` and `self`.
    pub fn since(self, earlier: SchedTimes) -> SchedTimes {
        SchedTimes {
            running: self.running.saturating_sub(earlier.running),
            waiting: self.waiting.saturating_sub(earlier.waiting),
            slices: self.slices.saturating_sub(earlier.slices),
        }
    }
}

impl std::ops::Add for SchedTimes {
    type Output = SchedTimes;

    fn add(self, other: SchedTimes) -> SchedTimes {
        SchedTimes {
            running: self.running + other.running,
            waiting: self.waiting + other.waiting,
            slices: self.slices + other.slices,
        }
    }
}

/// [`SchedTimes`] of the live threads of process `pid` (a number, or
/// `"self"`) so far, summed from `/proc/<pid>/task/*/schedstat` (Linux,
/// nanoseconds). `None` elsewhere.
pub fn sched_times_of(pid: &str) -> Option<SchedTimes> {
    let mut total = SchedTimes::default();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        let mut fields = stat.split_whitespace().map(|f| f.parse::<u64>().ok());
        let (running, waiting, slices) = (fields.next()??, fields.next()??, fields.next()??);
        total = total
            + SchedTimes {
                running: Duration::from_nanos(running),
                waiting: Duration::from_nanos(waiting),
                slices,
            };
    }
    Some(total)
}
