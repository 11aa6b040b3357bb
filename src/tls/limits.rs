//! Bounds on connections: how many may be open at once (below the open-file limit), how long
//! one may go without a request, and which one makes room when the limit is reached.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Bounds of the accept loop and of each connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// A TLS handshake taking longer closes the connection (default 10 s).
    pub handshake_timeout: Duration,
    /// After the handshake, the first request must start within this (default 10 s).
    pub first_request_timeout: Duration,
    /// A connection with no request in flight for this long is closed: HTTP/1.1 keep-alive
    /// and idle HTTP/2 alike (default 90 s, as kube-apiserver).
    pub idle_timeout: Duration,
    /// HTTP/2 pings this often; a peer that does not answer one within
    /// [`KEEP_ALIVE_TIMEOUT`] is dropped (default 30 s).
    pub keep_alive_interval: Duration,
    /// Most connections open at once (see [`default_max_connections`]).
    pub max_connections: usize,
    /// After shutdown is requested, in-flight requests get this long (default 30 s).
    pub shutdown_grace: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            first_request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(90),
            keep_alive_interval: Duration::from_secs(30),
            max_connections: default_max_connections(open_file_limit()),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// How long an HTTP/2 peer has to answer a keep-alive ping.
pub const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Most connections by default, however many files may be open: 3,000 idle connections
/// held about 38 MB.
pub const MAX_CONNECTIONS_CEILING: usize = 4096;

/// The soft limit on open files of this process (`Max open files` of `/proc/self/limits`);
/// None when unknown or unlimited.
pub fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The default connection cap: the open-file limit less room for what else needs files
/// (connections to the backend and the cluster, config, certificate and model files): 64 and
/// an eighth of the limit; at most [`MAX_CONNECTIONS_CEILING`], at least 16.
pub fn default_max_connections(open_file_limit: Option<u64>) -> usize {
    let Some(limit) = open_file_limit.and_then(|l| usize::try_from(l).ok()) else {
        return MAX_CONNECTIONS_CEILING;
    };
    let reserve = 64 + limit / 8;
    limit
        .saturating_sub(reserve)
        .clamp(16, MAX_CONNECTIONS_CEILING)
}

/// Milliseconds since the first call, as a clock atomics can hold.
fn now_ms() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    let base = *BASE.get_or_init(Instant::now);
    u64::try_from(base.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// What one connection is doing, shared by its task and the accept loop.
#[derive(Debug, Default)]
pub(super) struct Activity {
    in_flight: AtomicUsize,
    requests: AtomicU64,
    idle_since_ms: AtomicU64,
    close: Notify,
    /// Signalled when a request finishes: the idle deadline moved.
    finished: Notify,
}

impl Activity {
    fn new() -> Self {
        let activity = Self::default();
        activity.idle_since_ms.store(now_ms(), Ordering::Relaxed);
        activity
    }

    /// Marks a request as started; the guard marks it finished when dropped.
    pub(super) fn begin(self: &Arc<Self>) -> RequestGuard {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.requests.fetch_add(1, Ordering::Relaxed);
        RequestGuard(self.clone())
    }

    /// Restarts the idle clock (when the TLS handshake is done).
    pub(super) fn touch(&self) {
        self.idle_since_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// How long the connection may stay as it is before it is closed; None while a request
    /// is in flight.
    pub(super) fn time_left(&self, limits: &ServeLimits) -> Option<Duration> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let allowed = if self.requests.load(Ordering::Relaxed) == 0 {
            limits.first_request_timeout
        } else {
            limits.idle_timeout
        };
        let idle = Duration::from_millis(
            now_ms().saturating_sub(self.idle_since_ms.load(Ordering::Relaxed)),
        );
        Some(allowed.saturating_sub(idle))
    }

    /// Completes when a request finishes after this was last awaited (the deadline
    /// [`time_left`](Self::time_left) gives has moved).
    pub(super) async fn request_finished(&self) {
        self.finished.notified().await;
    }

    /// Completes when the accept loop asks this connection to close to make room.
    pub(super) async fn evicted(&self) {
        self.close.notified().await;
    }
}

/// A request in flight on a connection.
pub(super) struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.idle_since_ms.store(now_ms(), Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        // A stored permit: the connection's loop sees it even if it is not waiting yet.
        self.0.finished.notify_one();
    }
}

/// The open connections and the cap on them.
#[derive(Debug)]
pub(super) struct Connections {
    max: usize,
    open: Mutex<Vec<(u64, Arc<Activity>)>>,
    next_id: AtomicU64,
    closed: Notify,
    last_warning: Mutex<Option<Instant>>,
}

/// One open connection's place; gives it up when dropped.
pub(super) struct Slot {
    id: u64,
    connections: Arc<Connections>,
    /// The connection's activity.
    pub(super) activity: Arc<Activity>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.connections.lock().retain(|(id, _)| *id != self.id);
        self.connections.closed.notify_waiters();
    }
}

/// How often the limit warnings may repeat.
const WARN_EVERY: Duration = Duration::from_secs(10);

impl Connections {
    pub(super) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            open: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
            closed: Notify::new(),
            last_warning: Mutex::new(None),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(u64, Arc<Activity>)>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many connections are open.
    pub(super) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Takes a place for a new connection; with how many are open now (counted under the
    /// same lock, for the accept loop's [`super::trim::Trimmer`]).
    pub(super) fn open(self: &Arc<Self>) -> (Slot, usize) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity::new());
        let count = {
            let mut open = self.lock();
            open.push((id, activity.clone()));
            open.len()
        };
        let slot = Slot {
            id,
            connections: self.clone(),
            activity,
        };
        (slot, count)
    }

    /// Waits until a new connection may be accepted. At the cap, the connection that has
    /// waited longest without a request in flight (preferring ones that never sent one: a
    /// handshake, or a handshake and silence) is asked to close; when every connection has
    /// a request in flight, new ones wait in the listen backlog until one closes.
    pub(super) async fn room(&self) {
        loop {
            let closed = self.closed.notified();
            let (open, victim) = {
                let open = self.lock();
                if open.len() < self.max {
                    return;
                }
                let victim = open
                    .iter()
                    .filter(|(_, a)| a.in_flight.load(Ordering::Acquire) == 0)
                    .min_by_key(|(_, a)| {
                        (
                            a.requests.load(Ordering::Relaxed) > 0,
                            a.idle_since_ms.load(Ordering::Relaxed),
                        )
                    })
                    .map(|(_, a)| a.clone());
                (open.len(), victim)
            };
            match victim {
                Some(activity) => {
                    let idle = Duration::from_millis(
                        now_ms().saturating_sub(activity.idle_since_ms.load(Ordering::Relaxed)),
                    );
                    let never = activity.requests.load(Ordering::Relaxed) == 0;
                    if self.may_warn() {
                        tracing::warn!(
                            open,
                            max = self.max,
                            idle_secs = idle.as_secs(),
                            sent_a_request = !never,
                            "connection limit reached: closing the connection idle longest to make room (--max-connections, below the open-file limit)"
                        );
                    }
                    activity.close.notify_one();
                }
                None => {
                    if self.may_warn() {
                        tracing::warn!(
                            open,
                            max = self.max,
                            "connection limit reached and every connection has a request in flight: new connections wait (--max-connections, below the open-file limit)"
                        );
                    }
                }
            }
            // Woken when a connection closes; a victim that does not close in time is
            // asked again (or another one).
            let _ = tokio::time::timeout(Duration::from_secs(1), closed).await;
        }
    }

    /// Whether a limit warning may be logged now (at most one per [`WARN_EVERY`]).
    pub(super) fn may_warn(&self) -> bool {
        let mut last = self
            .last_warning
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < WARN_EVERY) {
            return false;
        }
        *last = Some(now);
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_stays_below_the_open_file_limit() {
        assert_eq!(default_max_connections(Some(256)), 160);
        assert_eq!(default_max_connections(Some(1024)), 832);
        assert_eq!(
            default_max_connections(Some(1 << 20)),
            MAX_CONNECTIONS_CEILING
        );
        assert_eq!(default_max_connections(Some(40)), 16);
        assert_eq!(default_max_connections(None), MAX_CONNECTIONS_CEILING);
        let limit = open_file_limit().unwrap();
        assert!(limit >= 16, "{limit}");
    }

    #[tokio::test]
    async fn idle_time_counts_from_the_last_request() {
        let limits = ServeLimits {
            first_request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(90),
            ..ServeLimits::default()
        };
        let activity = Arc::new(Activity::new());
        assert!(activity.time_left(&limits).unwrap() > Duration::from_secs(9));
        let guard = activity.begin();
        assert_eq!(activity.time_left(&limits), None);
        drop(guard);
        assert!(activity.time_left(&limits).unwrap() > Duration::from_secs(89));
    }

    #[tokio::test]
    async fn at_the_cap_the_idlest_connection_is_asked_to_close() {
        let connections = Connections::new(2);
        let (first, _) = connections.open();
        let (busy, count) = connections.open();
        assert_eq!(count, 2);
        let _request = busy.activity.begin();
        let room = tokio::spawn({
            let connections = connections.clone();
            async move { connections.room().await }
        });
        // The idle one (not the busy one) is asked to close; when it does, there is room.
        tokio::time::timeout(Duration::from_secs(5), first.activity.evicted())
            .await
            .unwrap();
        assert_eq!(connections.len(), 2);
        drop(first);
        tokio::time::timeout(Duration::from_secs(5), room)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(connections.len(), 1);
    }
}
