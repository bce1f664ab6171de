//! A hand-rolled progress line with live throughput. On a terminal it is
//! redrawn in place ten times a second; elsewhere (a pipe, CI) it prints a
//! plain line at every quarter, or nothing if asked to stay quiet.

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::size::format_bytes;

/// How often a terminal line is redrawn.
const TICK: Duration = Duration::from_millis(100);
const BAR: usize = 24;

/// Where a progress line goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Standard output; plain milestone lines when it is not a terminal.
    Stdout,
    /// Standard error, and only when it is a terminal.
    StderrIfTerminal,
}

/// A byte counter shared by the workers and the progress line.
pub type Meter = Arc<AtomicU64>;

/// A progress line over a byte count, with an optional total.
#[derive(Debug)]
pub struct Progress {
    label: String,
    total: Option<u64>,
    target: Target,
    tty: bool,
    start: Instant,
    last: (Instant, u64),
    rate: f64,
    next_quarter: u64,
    drawn: bool,
}

impl Progress {
    /// A progress line labelled `label` towards `total` bytes, if known.
    pub fn new(label: impl Into<String>, total: Option<u64>, target: Target) -> Progress {
        let tty = match target {
            Target::Stdout => std::io::stdout().is_terminal(),
            Target::StderrIfTerminal => std::io::stderr().is_terminal(),
        };
        let now = Instant::now();
        Progress {
            label: label.into(),
            total,
            target,
            tty,
            start: now,
            last: (now, 0),
            rate: 0.0,
            next_quarter: 1,
            drawn: false,
        }
    }

    /// Shows `bytes` done, `detail` after the figures.
    pub fn update(&mut self, bytes: u64, detail: &str) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last.0).as_secs_f64();
        if elapsed >= TICK.as_secs_f64() / 2.0 {
            // Live throughput: a smoothed rate over the last ticks.
            let recent = bytes.saturating_sub(self.last.1) as f64 / elapsed;
            self.rate = if self.drawn {
                0.5 * self.rate + 0.5 * recent
            } else {
                recent
            };
            self.last = (now, bytes);
        }
        if self.tty {
            let line = self.line(bytes, self.rate, detail);
            self.write(&format!("\r\x1b[2K{line}"));
            self.drawn = true;
        } else if self.target == Target::Stdout {
            let Some(total) = self.total.filter(|&t| t > 0) else {
                return;
            };
            let quarter = bytes.saturating_mul(4) / total;
            if quarter >= self.next_quarter && quarter < 4 {
                self.next_quarter = quarter + 1;
                let line = self.line(bytes, self.rate, detail);
                self.write(&format!("{line}\n"));
            }
        }
    }

    /// Ends the line with the totals and the mean throughput.
    pub fn finish(&mut self, bytes: u64, detail: &str) {
        let mean = bytes as f64 / self.start.elapsed().as_secs_f64().max(1e-9);
        let line = self.line(bytes, mean, detail);
        match (self.tty, self.target) {
            (true, _) => self.write(&format!("\r\x1b[2K{line}\n")),
            (false, Target::Stdout) => self.write(&format!("{line}\n")),
            (false, Target::StderrIfTerminal) => {}
        }
    }

    fn line(&self, bytes: u64, rate: f64, detail: &str) -> String {
        let mut line = format!("{:<10}", self.label);
        if let Some(total) = self.total.filter(|&t| t > 0) {
            let done = (bytes.min(total) as f64 / total as f64 * BAR as f64) as usize;
            line += &format!(
                " [{}{}] {:>3}%",
                "#".repeat(done),
                ".".repeat(BAR - done),
                bytes.min(total) * 100 / total
            );
        }
        line += &format!(
            " {:>10}  {:>8.1} MB/s",
            format_bytes(bytes),
            rate / 1_000_000.0
        );
        if !detail.is_empty() {
            line += "  ";
            line += detail;
        }
        line
    }

    fn write(&self, text: &str) {
        // A closed terminal or pipe must not stop the work being shown.
        let _ = match self.target {
            Target::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes()).and_then(|()| out.flush())
            }
            Target::StderrIfTerminal => {
                let mut err = std::io::stderr().lock();
                err.write_all(text.as_bytes()).and_then(|()| err.flush())
            }
        };
    }
}

/// Runs `work` while redrawing `progress` from `meter` every tick, with
/// `detail()` after the figures, then finishes the line.
pub async fn track<T>(
    mut progress: Progress,
    meter: &Meter,
    detail: impl Fn() -> String,
    work: impl Future<Output = T>,
) -> T {
    let mut work = std::pin::pin!(work);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let result = loop {
        tokio::select! {
            result = &mut work => break result,
            _ = tick.tick() => progress.update(meter.load(Ordering::Relaxed), &detail()),
        }
    };
    progress.finish(meter.load(Ordering::Relaxed), &detail());
    result
}
