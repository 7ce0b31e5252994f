//! Session transcripts in memory: live ones while their session runs, closed ones for a
//! while after (so a later request can save a permalink). Bounded by count and by memory
//! (each transcript's [`Transcript::cost`]: payload, entry table and heap blocks, so a flood
//! of tiny messages counts what it really holds); the oldest closed transcript goes first.

use iacscope_shared::transcript::Transcript;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// A live session's transcript, shared between its relay and the store.
pub type Live = Arc<Mutex<Transcript>>;

/// Locks a transcript (a panic while holding it cannot leave it inconsistent in a way that
/// matters for display).
pub fn lock(t: &Mutex<Transcript>) -> MutexGuard<'_, Transcript> {
    t.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug)]
struct Closed {
    transcript: Arc<Transcript>,
    expires: Instant,
    /// Wall-clock close time, Unix microseconds (the record's `connected`).
    closed_unix_micros: i64,
}

/// Why [`Store::closed`] has no transcript to give.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// The session is still running.
    Live,
    /// No such session, or it expired or was evicted.
    Gone,
}

#[derive(Debug, Default)]
struct Inner {
    live: HashMap<String, Live>,
    closed: HashMap<String, Closed>,
    order: VecDeque<String>,
    closed_bytes: usize,
}

/// The store.
#[derive(Debug)]
pub struct Store {
    retention: Duration,
    max_stored: usize,
    max_bytes: usize,
    inner: Mutex<Inner>,
}

impl Store {
    /// A store keeping closed transcripts for `retention`, at most `max_stored` of them and
    /// `max_bytes` of memory in all ([`Transcript::cost`]).
    pub fn new(retention: Duration, max_stored: usize, max_bytes: usize) -> Store {
        Store {
            retention,
            max_stored,
            max_bytes,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a live session.
    pub fn insert_live(&self, id: &str, t: Live) {
        self.inner().live.insert(id.to_owned(), t);
    }

    /// Moves a session from live to closed, then enforces the bounds.
    pub fn close(&self, id: &str, now: Instant) {
        let mut inner = self.inner();
        let Some(live) = inner.live.remove(id) else {
            return;
        };
        // A compact copy (every vector exactly its length), its cost counted anew.
        let transcript = Arc::new(lock(&live).clone());
        if self.max_stored == 0 || transcript.cost() > self.max_bytes {
            return;
        }
        inner.closed_bytes += transcript.cost();
        inner.closed.insert(
            id.to_owned(),
            Closed {
                transcript,
                expires: now + self.retention,
                closed_unix_micros: unix_micros(),
            },
        );
        inner.order.push_back(id.to_owned());
        Self::evict(&mut inner, now, self.max_stored, self.max_bytes);
    }

    fn evict(inner: &mut Inner, now: Instant, max_stored: usize, max_bytes: usize) {
        while let Some(oldest) = inner.order.front() {
            let expired = inner.closed.get(oldest).is_none_or(|c| c.expires <= now);
            if !(expired || inner.closed.len() > max_stored || inner.closed_bytes > max_bytes) {
                break;
            }
            if let Some(id) = inner.order.pop_front() {
                if let Some(c) = inner.closed.remove(&id) {
                    inner.closed_bytes -= c.transcript.cost();
                }
            }
        }
    }

    /// A closed, retained transcript and its wall-clock close time (Unix microseconds).
    pub fn closed(&self, id: &str, now: Instant) -> Result<(Arc<Transcript>, i64), Missing> {
        let mut inner = self.inner();
        Self::evict(&mut inner, now, self.max_stored, self.max_bytes);
        if inner.live.contains_key(id) {
            return Err(Missing::Live);
        }
        inner
            .closed
            .get(id)
            .map(|c| (Arc::clone(&c.transcript), c.closed_unix_micros))
            .ok_or(Missing::Gone)
    }

    /// Memory held by closed transcripts ([`Transcript::cost`] summed).
    pub fn closed_cost(&self) -> usize {
        self.inner().closed_bytes
    }

    /// The text form of a live or retained transcript.
    pub fn text(&self, id: &str, now: Instant) -> Option<String> {
        let mut inner = self.inner();
        Self::evict(&mut inner, now, self.max_stored, self.max_bytes);
        if let Some(live) = inner.live.get(id) {
            let live = Arc::clone(live);
            drop(inner);
            return Some(lock(&live).to_text());
        }
        inner.closed.get(id).map(|c| c.transcript.to_text())
    }
}

/// Now, in Unix microseconds.
pub fn unix_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use iacscope_shared::time::Timestamp;
    use iacscope_shared::transcript::Entry;

    fn live(n: usize) -> Live {
        let mut t = Transcript::new();
        t.push(Entry::Recv(Timestamp(0), vec![b'x'; n]));
        Arc::new(Mutex::new(t))
    }

    #[test]
    fn retention_count_and_bytes() {
        let one = {
            let t = lock(&live(10)).clone();
            t.cost()
        };
        let s = Store::new(Duration::from_secs(60), 2, 2 * one + one / 2);
        let t0 = Instant::now();
        for (id, n) in [("a", 10), ("b", 10), ("c", 10)] {
            s.insert_live(id, live(n));
            assert!(s.text(id, t0).is_some());
            s.close(id, t0);
        }
        assert!(s.text("a", t0).is_none(), "count bound drops the oldest");
        assert!(s.text("b", t0).is_some());
        s.insert_live("d", live(10));
        s.close("d", t0);
        assert!(s.text("b", t0).is_none(), "byte bound drops the oldest");
        assert!(s.text("d", t0 + Duration::from_secs(59)).is_some());
        assert!(
            s.text("d", t0 + Duration::from_secs(60)).is_none(),
            "expired"
        );
    }
}
