//! The demo's streams: each writes a pattern to an echo node and checks
//! what comes back; one cut by a link going down is opened again.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use circuit_node::Node;
use futures::{Stream, StreamExt};
use tokio::sync::Notify;

use crate::error::CliError;
use crate::mesh::Result;
use crate::pattern::{round_trip, Pattern};
use crate::progress::Meter;

/// How often a stream is opened again after it was cut.
const ATTEMPTS: u32 = 5;

/// One stream to run: its number (which picks its bytes), its peer, and
/// how many bytes go each way.
#[derive(Debug, Clone, Copy)]
pub struct Job {
    /// The stream's number.
    pub id: u32,
    /// The echo node.
    pub peer: &'static str,
    /// Bytes each way.
    pub bytes: u64,
}

impl Job {
    /// A job.
    pub fn new(id: u32, peer: &'static str, bytes: u64) -> Job {
        Job { id, peer, bytes }
    }
}

/// What a phase did.
#[derive(Debug, Default)]
pub struct Tally {
    /// Streams that completed.
    pub streams: usize,
    /// Bytes echoed and verified.
    pub bytes: u64,
    /// Streams cut at least once and opened again.
    pub retried: u32,
    /// For each completed stream, the neighbour it went through.
    pub hops: Vec<String>,
}

impl Tally {
    /// How many completed streams went through neighbour `hop`.
    pub fn via(&self, hop: &str) -> usize {
        self.hops.iter().filter(|h| *h == hop).count()
    }
}

/// What the streams of a phase share.
#[derive(Debug)]
pub struct Shared<'a> {
    /// The node the streams are opened from.
    pub node: &'a Node,
    /// The bytes they carry.
    pub pattern: &'a Pattern,
    /// Bytes echoed so far (a failed attempt's bytes are taken back).
    pub meter: &'a Meter,
    /// Streams cut and opened again.
    pub retried: &'a AtomicU32,
    /// Streams done.
    pub done: &'a AtomicU32,
    /// Notified once when the meter passes this many bytes.
    pub cross: Option<(u64, &'a Notify)>,
    /// The longest wait for an echo.
    pub timeout: Duration,
}

/// One future per job, each resolving to the neighbour its stream went
/// through, for `buffer_unordered`.
pub fn echo_streams<'a>(
    shared: &'a Shared<'a>,
    jobs: Vec<Job>,
) -> impl Stream<Item = impl Future<Output = Result<String>> + 'a> + 'a {
    futures::stream::iter(jobs).map(move |job| run_job(shared, job))
}

async fn run_job(shared: &Shared<'_>, job: Job) -> Result<String> {
    let mut attempt = 1;
    loop {
        let hop = shared
            .node
            .snapshot()
            .next_hop(job.peer)
            .map_or_else(|| "-".to_owned(), ToString::to_string);
        let mut echoed = 0;
        match echo_once(shared, job, &mut echoed).await {
            Ok(()) => {
                shared.done.fetch_add(1, Ordering::Relaxed);
                return Ok(hop);
            }
            Err(e @ CliError::Mismatch { .. }) => return Err(e),
            Err(e) if attempt < ATTEMPTS => {
                tracing::info!(stream = job.id, %hop, error = %e, "stream cut; opening it again");
                shared.meter.fetch_sub(echoed, Ordering::Relaxed);
                if attempt == 1 {
                    shared.retried.fetch_add(1, Ordering::Relaxed);
                }
                attempt += 1;
                route_moved(shared.node, job.peer, &hop).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Writes the job's bytes on a new stream and checks the echo; `echoed`
/// counts what came back.
async fn echo_once(shared: &Shared<'_>, job: Job, echoed: &mut u64) -> Result<()> {
    let stream = shared.node.connect_to_peer(job.peer).await?;
    let count = |n: usize| {
        let n = n as u64;
        *echoed += n;
        let before = shared.meter.fetch_add(n, Ordering::Relaxed);
        if let Some((at, notify)) = shared.cross {
            if before < at && before + n >= at {
                notify.notify_one();
            }
        }
    };
    round_trip(
        stream,
        shared.pattern,
        job.id,
        job.bytes,
        shared.timeout,
        count,
    )
    .await
}

/// Waits (at most a second) until streams to `peer` no longer go first to
/// `hop`: the node has noticed that the link the stream was cut with is
/// down and dropped its routes.
async fn route_moved(node: &Node, peer: &str, hop: &str) {
    let moved = async {
        while node.snapshot().next_hop(peer).is_some_and(|h| h == hop) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), moved).await;
}
