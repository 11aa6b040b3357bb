//! Gives the heap memory that closed connections freed back to the system.
//!
//! glibc keeps what a thread frees in that thread's arena, fragmented between live
//! allocations, and returns only the top of each heap: after 3,000 idle TLS connections
//! closed, augur stayed 28-40 MiB above where it started, for good. `malloc_trim(0)` walks
//! every arena and gives back the free pages inside it. It locks each arena while it runs,
//! so it is called only when the number of open connections has fallen by
//! [`TRIM_AFTER_CLOSED`] since the last call (under steady churn the freed memory is reused
//! by the next connections and there is nothing to give back), at most every
//! [`TRIM_EVERY`], on a blocking thread.

use std::time::Duration;

/// How often the accept loop asks [`Trimmer::due`].
pub(super) const TRIM_EVERY: Duration = Duration::from_secs(2);

/// How far the open connections must fall below their peak since the last trim.
pub(super) const TRIM_AFTER_CLOSED: usize = 64;

/// When to trim: the most connections open since the last trim.
#[derive(Debug, Default)]
pub(super) struct Trimmer {
    peak: usize,
}

impl Trimmer {
    /// Notes `open` connections.
    pub(super) fn saw(&mut self, open: usize) {
        self.peak = self.peak.max(open);
    }

    /// Whether to trim now that `open` connections are open; if so, starts counting again
    /// from `open`.
    pub(super) fn due(&mut self, open: usize) -> bool {
        if self.peak.saturating_sub(open) < TRIM_AFTER_CLOSED {
            self.peak = self.peak.max(open);
            return false;
        }
        self.peak = open;
        true
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
// SAFETY: glibc's declaration (`int malloc_trim(size_t pad)`); it takes no pointers and
// touches only glibc's own free lists, under the arena locks every allocator call takes, so
// calling it is safe whatever the argument.
unsafe extern "C" {
    safe fn malloc_trim(pad: usize) -> std::ffi::c_int;
}

/// Asks the allocator to give the free pages of every arena back to the system; whether it
/// gave any. Elsewhere than glibc it does nothing: musl and the other platforms' allocators
/// have no such call.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(super) fn release_free_memory() -> bool {
    malloc_trim(0) == 1
}

/// See the glibc version above.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(super) fn release_free_memory() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_once_the_open_connections_fall_by_the_threshold() {
        let mut trimmer = Trimmer::default();
        trimmer.saw(100);
        // Steady churn around the peak: nothing to give back.
        assert!(!trimmer.due(100));
        assert!(!trimmer.due(100 - TRIM_AFTER_CLOSED + 1));
        assert!(trimmer.due(100 - TRIM_AFTER_CLOSED));
        // Counting starts again from where it was trimmed.
        assert!(!trimmer.due(0));
        trimmer.saw(TRIM_AFTER_CLOSED + 5);
        assert!(!trimmer.due(6));
        assert!(trimmer.due(5));
    }

    #[test]
    fn a_peak_seen_only_at_a_check_counts() {
        let mut trimmer = Trimmer::default();
        assert!(!trimmer.due(TRIM_AFTER_CLOSED * 2));
        assert!(trimmer.due(TRIM_AFTER_CLOSED));
    }

    #[test]
    fn freeing_a_large_fragmented_heap_is_given_back() {
        // Interleave big and small blocks, free the big ones: the small ones keep glibc
        // from returning them from the top of the heap, only a trim can.
        let mut blocks: Vec<(Vec<u8>, Vec<u8>)> = (0..2_000)
            .map(|i| (vec![i as u8; 16 * 1024], vec![1u8; 64]))
            .collect();
        let small: Vec<Vec<u8>> = blocks
            .drain(..)
            .map(|(big, small)| {
                drop(big);
                small
            })
            .collect();
        let released = release_free_memory();
        assert_eq!(small.len(), 2_000);
        assert_eq!(released, cfg!(all(target_os = "linux", target_env = "gnu")));
    }
}
