//! Admission limits: global and per-client concurrency, per-client rate, per-target
//! concurrency. Each admitted session holds guards that give its slot back on drop, so a
//! slot lives exactly as long as the websocket task that owns it.
//!
//! Time is passed in (`now`), so the token bucket is tested without a clock.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Which limit refused a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// `max_sessions`.
    Global,
    /// `max_sessions_per_ip`.
    PerClient,
    /// `max_new_sessions_per_ip_per_minute`.
    Rate,
    /// `max_sessions_per_target`.
    PerTarget,
}

impl Limit {
    /// The label used in metrics.
    pub fn label(self) -> &'static str {
        match self {
            Limit::Global => "limit_global",
            Limit::PerClient => "limit_per_client",
            Limit::Rate => "limit_rate",
            Limit::PerTarget => "limit_per_target",
        }
    }

    /// A sentence for the browser.
    pub fn message(self) -> &'static str {
        match self {
            Limit::Global => "the proxy is at its session limit; try again later",
            Limit::PerClient => "too many sessions from your address at once",
            Limit::Rate => "too many new sessions from your address; wait a minute",
            Limit::PerTarget => "too many sessions to this server through this proxy",
        }
    }
}

#[derive(Debug)]
struct Client {
    active: usize,
    tokens: f64,
    refilled: Instant,
}

/// The numbers [`Limits`] enforces (copied from the config).
#[derive(Clone, Copy, Debug)]
pub struct LimitConfig {
    /// Concurrent sessions in all.
    pub max_sessions: usize,
    /// Concurrent sessions per client key.
    pub per_client: usize,
    /// New sessions per client key per minute.
    pub per_minute: u32,
    /// Concurrent sessions per target address.
    pub per_target: usize,
}

/// Shared admission state.
#[derive(Debug)]
pub struct Limits {
    cfg: LimitConfig,
    global: Arc<Semaphore>,
    clients: Mutex<HashMap<IpAddr, Client>>,
    targets: Mutex<HashMap<IpAddr, usize>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The maps hold plain counters; a panic elsewhere cannot leave them half-updated.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The key a client is counted under: its IPv4 address, or its IPv6 /64 (one subscriber
/// usually holds a whole /64).
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & (u128::MAX << 64)).into()),
        v4 => v4,
    }
}

/// A session's admission: its global permit and client slot, released on drop.
#[derive(Debug)]
pub struct Admission {
    _permit: OwnedSemaphorePermit,
    _client: ClientGuard,
}

#[derive(Debug)]
struct ClientGuard {
    limits: Arc<Limits>,
    key: IpAddr,
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        let mut clients = lock(&self.limits.clients);
        if let Some(c) = clients.get_mut(&self.key) {
            c.active = c.active.saturating_sub(1);
        }
    }
}

/// A slot towards one target, released on drop.
#[derive(Debug)]
pub struct TargetGuard {
    limits: Arc<Limits>,
    ip: IpAddr,
}

impl Drop for TargetGuard {
    fn drop(&mut self) {
        let mut targets = lock(&self.limits.targets);
        if let Some(n) = targets.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                targets.remove(&self.ip);
            }
        }
    }
}

impl Limits {
    /// New limits.
    pub fn new(cfg: LimitConfig) -> Arc<Limits> {
        Arc::new(Limits {
            cfg,
            global: Arc::new(Semaphore::new(cfg.max_sessions)),
            clients: Mutex::new(HashMap::new()),
            targets: Mutex::new(HashMap::new()),
        })
    }

    /// Admits a new session from `client` at `now`, or says which limit refused it.
    pub fn admit(self: &Arc<Self>, client: IpAddr, now: Instant) -> Result<Admission, Limit> {
        let key = client_key(client);
        let permit = Arc::clone(&self.global)
            .try_acquire_owned()
            .map_err(|_| Limit::Global)?;
        let mut clients = lock(&self.clients);
        let capacity = f64::from(self.cfg.per_minute);
        if clients.len() >= 4096 {
            // Forget clients with nothing running and a full bucket: they are at defaults.
            clients.retain(|_, c| {
                let refill =
                    now.saturating_duration_since(c.refilled).as_secs_f64() * capacity / 60.0;
                c.active > 0 || c.tokens + refill < capacity
            });
        }
        let c = clients.entry(key).or_insert(Client {
            active: 0,
            tokens: capacity,
            refilled: now,
        });
        let elapsed = now.saturating_duration_since(c.refilled).as_secs_f64();
        c.tokens = (c.tokens + elapsed * capacity / 60.0).min(capacity);
        c.refilled = now;
        if c.active >= self.cfg.per_client {
            return Err(Limit::PerClient);
        }
        if c.tokens < 1.0 {
            return Err(Limit::Rate);
        }
        c.tokens -= 1.0;
        c.active += 1;
        drop(clients);
        Ok(Admission {
            _permit: permit,
            _client: ClientGuard {
                limits: Arc::clone(self),
                key,
            },
        })
    }

    /// Takes a slot towards `target`.
    pub fn target(self: &Arc<Self>, target: IpAddr) -> Result<TargetGuard, Limit> {
        let mut targets = lock(&self.targets);
        let n = targets.entry(target).or_insert(0);
        if *n >= self.cfg.per_target {
            if *n == 0 {
                targets.remove(&target);
            }
            return Err(Limit::PerTarget);
        }
        *n += 1;
        Ok(TargetGuard {
            limits: Arc::clone(self),
            ip: target,
        })
    }

    /// Sessions running now.
    pub fn active(&self) -> usize {
        self.cfg.max_sessions - self.global.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits(max: usize, per_client: usize, per_minute: u32, per_target: usize) -> Arc<Limits> {
        Limits::new(LimitConfig {
            max_sessions: max,
            per_client,
            per_minute,
            per_target,
        })
    }

    #[test]
    fn token_bucket_refills() {
        let l = limits(100, 100, 2, 10);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t0 = Instant::now();
        let a = l.admit(ip, t0).unwrap();
        let b = l.admit(ip, t0).unwrap();
        drop((a, b));
        assert_eq!(l.admit(ip, t0).unwrap_err(), Limit::Rate);
        // One token comes back every 30 s at 2 a minute.
        assert_eq!(
            l.admit(ip, t0 + Duration::from_secs(29)).unwrap_err(),
            Limit::Rate
        );
        assert!(l.admit(ip, t0 + Duration::from_secs(31)).is_ok());
    }

    #[test]
    fn concurrency_slots_come_back() {
        let l = limits(2, 1, 100, 1);
        let t0 = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        let c: IpAddr = "2001:db8::2".parse().unwrap();
        let x = l.admit(a, t0).unwrap();
        assert_eq!(l.admit(a, t0).unwrap_err(), Limit::PerClient);
        let y = l.admit(b, t0).unwrap();
        // Same /64 as b, and the global limit is full anyway.
        assert_eq!(l.admit(c, t0).unwrap_err(), Limit::Global);
        drop(x);
        assert_eq!(l.admit(c, t0).unwrap_err(), Limit::PerClient);
        drop(y);
        assert!(l.admit(c, t0).is_ok());
        let g = l.target(a).unwrap();
        assert_eq!(l.target(a).unwrap_err(), Limit::PerTarget);
        drop(g);
        assert!(l.target(a).is_ok());
    }
}
