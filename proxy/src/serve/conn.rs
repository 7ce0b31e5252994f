//! Admission of TCP connections, before any HTTP is read: a global and a per-address budget
//! of open connections, and the process's file-descriptor budget they must fit in. A
//! connection refused here gets one fixed `503` line written without waiting and is closed;
//! it never reaches hyper. Websocket sessions leave this count at their upgrade and are
//! bounded by `limits` instead.

use super::limits::client_key;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// Which connection budget refused a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnLimit {
    /// `max_connections`.
    Global,
    /// `max_connections_per_ip`.
    PerAddress,
}

impl ConnLimit {
    /// The `iacscope_refusals_total` reason.
    pub fn label(self) -> &'static str {
        match self {
            ConnLimit::Global => "connections_global",
            ConnLimit::PerAddress => "connections_per_ip",
        }
    }

    /// The whole reply: a `503` whose body says which limit and what to do.
    pub fn response(self) -> &'static [u8] {
        match self {
            ConnLimit::Global => {
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n\
Retry-After: 10\r\nConnection: close\r\nContent-Length: 94\r\n\r\n\
max_connections: this server has as many connections open as it serves; try again in a moment\n"
            }
            ConnLimit::PerAddress => {
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n\
Retry-After: 10\r\nConnection: close\r\nContent-Length: 93\r\n\r\n\
max_connections_per_ip: too many connections from your address at once; close some and retry\n"
            }
        }
    }
}

/// The open connections, in all and per client key.
#[derive(Debug)]
pub struct Connections {
    max: usize,
    per_address: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    total: usize,
    by_key: HashMap<IpAddr, usize>,
}

/// One admitted connection; gives its place back on drop.
#[derive(Debug)]
pub struct ConnGuard {
    owner: Arc<Connections>,
    key: Option<IpAddr>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut inner = self.owner.lock();
        inner.total -= 1;
        if let Some(key) = self.key {
            if let Some(n) = inner.by_key.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    inner.by_key.remove(&key);
                }
            }
        }
    }
}

impl Connections {
    /// Budgets of `max` connections in all and `per_address` from one client key.
    pub fn new(max: usize, per_address: usize) -> Arc<Connections> {
        Arc::new(Connections {
            max,
            per_address,
            inner: Mutex::new(Inner::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Plain counters: a panic elsewhere cannot leave them half-updated.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a connection from `peer`; `shared_peer` (a trusted reverse proxy, whose
    /// clients are not known yet) counts only against the global budget.
    pub fn admit(
        self: &Arc<Self>,
        peer: IpAddr,
        shared_peer: bool,
    ) -> Result<ConnGuard, ConnLimit> {
        let mut inner = self.lock();
        if inner.total >= self.max {
            return Err(ConnLimit::Global);
        }
        let key = (!shared_peer).then(|| client_key(peer));
        if let Some(key) = key {
            let n = inner.by_key.entry(key).or_insert(0);
            if *n >= self.per_address {
                if *n == 0 {
                    inner.by_key.remove(&key);
                }
                return Err(ConnLimit::PerAddress);
            }
            *n += 1;
        }
        inner.total += 1;
        drop(inner);
        Ok(ConnGuard {
            owner: Arc::clone(self),
            key,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().total
    }
}

/// Descriptors kept back for everything that is not a counted connection or session: the
/// listener, the store, TLS roots, logs, server-side scans.
pub const FD_RESERVE: u64 = 256;

/// Raises the soft open-file limit to the hard one (a no-op where it already is, or where
/// the platform has none) and returns the soft limit in force.
pub fn raise_fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        match rlimit::increase_nofile_limit(u64::MAX) {
            Ok(n) => Some(n),
            Err(_) => rlimit::getrlimit(rlimit::Resource::NOFILE)
                .ok()
                .map(|(soft, _)| soft),
        }
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// How many HTTP connections fit beside `max_sessions` relays (two descriptors each) in a
/// soft limit of `fd_limit` descriptors, keeping [`FD_RESERVE`]. A connection counts two:
/// its socket and the static file it may be sending. When the sessions alone would not fit
/// (then the descriptors, not `max_sessions`, bound them), connections still get an eighth
/// of the limit: new visitors must be able to reach the page.
pub fn connections_that_fit(fd_limit: u64, max_sessions: usize) -> usize {
    let sessions = 2 * max_sessions as u64;
    let left = fd_limit.saturating_sub(FD_RESERVE + sessions) / 2;
    usize::try_from(left.max(fd_limit / 8)).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_and_release() {
        let c = Connections::new(3, 2);
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "2001:db8::1".parse().expect("ip");
        let b2: IpAddr = "2001:db8::2".parse().expect("ip");
        let x = c.admit(a, false).expect("first");
        let _y = c.admit(a, false).expect("second");
        assert_eq!(c.admit(a, false).unwrap_err(), ConnLimit::PerAddress);
        let _z = c.admit(b, false).expect("other address");
        assert_eq!(c.admit(b2, false).unwrap_err(), ConnLimit::Global);
        drop(x);
        let _w = c.admit(b2, false).expect("same /64 as b, one place left");
        assert_eq!(c.open(), 3);
        // A trusted proxy's connections count globally only.
        let c = Connections::new(10, 1);
        let guards: Vec<_> = (0..5).map(|_| c.admit(a, true).expect("proxy")).collect();
        assert_eq!(c.open(), 5);
        drop(guards);
        assert_eq!(c.open(), 0);
    }

    #[test]
    fn responses_have_their_length() {
        for l in [ConnLimit::Global, ConnLimit::PerAddress] {
            let r = l.response();
            let split = r.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
            let head = std::str::from_utf8(&r[..split]).expect("ascii");
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .expect("length")
                .parse()
                .expect("number");
            assert_eq!(len, r.len() - split, "{head}");
            let body = std::str::from_utf8(&r[split..]).expect("body");
            let limit = match l {
                ConnLimit::Global => "max_connections:",
                ConnLimit::PerAddress => "max_connections_per_ip:",
            };
            assert!(body.starts_with(limit), "{body}");
        }
    }

    #[test]
    fn descriptor_budget() {
        assert_eq!(
            connections_that_fit(20_000, 1024),
            (20_000 - 256 - 2048) / 2
        );
        assert_eq!(connections_that_fit(1024, 1024), 128);
        assert_eq!(connections_that_fit(20_000, 20_000), 2_500);
    }
}
