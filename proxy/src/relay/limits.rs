//! Admission limits: global and per-client concurrency, per-client rate, per-target
//! concurrency (with a per-client share of each target, and idle sessions that yield their
//! target slot to a newcomer). Each admitted session holds guards that give its slot back on
//! drop, so a slot lives exactly as long as the websocket task that owns it.
//!
//! Time is passed in (`now`) for admission, so the token bucket is tested without a clock.
//! Closing a yielding session is the relay's job: this module only tells it to.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Which limit refused a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// `max_sessions`.
    Global,
    /// `max_sessions_per_ip`.
    PerClient,
    /// `max_new_sessions_per_ip_per_minute`.
    Rate,
    /// `max_sessions_per_target`, with no session idle long enough to yield.
    PerTarget,
    /// `max_sessions_per_ip_per_target`.
    PerClientTarget,
}

impl Limit {
    /// The label used in metrics.
    pub fn label(self) -> &'static str {
        match self {
            Limit::Global => "limit_global",
            Limit::PerClient => "limit_per_client",
            Limit::Rate => "limit_rate",
            Limit::PerTarget => "limit_per_target",
            Limit::PerClientTarget => "limit_per_client_target",
        }
    }

    /// A sentence for the browser: which limit, and what to do about it.
    pub fn message(self) -> &'static str {
        match self {
            Limit::Global => "the proxy is at its session limit; try again later",
            Limit::PerClient => {
                "too many sessions from your address at once; close one of them first"
            }
            Limit::Rate => "too many new sessions from your address; wait a minute",
            Limit::PerTarget => {
                "every session this proxy allows to this server is in use and none has been \
                 idle long enough to give way; try again in a minute"
            }
            Limit::PerClientTarget => {
                "your address already holds its share of the sessions this proxy allows to \
                 this server; close one of them first"
            }
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
    /// Concurrent sessions per client key to one target address (a share of `per_target`).
    pub per_client_target: usize,
    /// A session idle this long gives its target slot to a newcomer when the target is full.
    pub yield_after: Duration,
}

/// Shared admission state.
#[derive(Debug)]
pub struct Limits {
    cfg: LimitConfig,
    global: Arc<Semaphore>,
    clients: Mutex<HashMap<IpAddr, Client>>,
    targets: Mutex<HashMap<IpAddr, Slots>>,
    next_id: AtomicU64,
}

/// One target address's slots: who holds them, and who waits for one (first come first
/// served).
#[derive(Debug, Default)]
struct Slots {
    holders: Vec<Holder>,
    /// Waiting newcomers (id, client key), in arrival order.
    waiting: VecDeque<(u64, IpAddr)>,
    /// Woken whenever a slot frees or a waiter leaves.
    notify: Arc<Notify>,
}

#[derive(Debug)]
struct Holder {
    id: u64,
    client: IpAddr,
    activity: Arc<Activity>,
    /// Whether it gives way to a newcomer when idle (relayed sessions do, server-side scans
    /// are short and busy and do not).
    yields: bool,
    /// Already told to give way.
    yielding: bool,
}

impl Slots {
    fn of_client(&self, key: IpAddr) -> usize {
        self.holders.iter().filter(|h| h.client == key).count()
            + self.waiting.iter().filter(|(_, c)| *c == key).count()
    }

    fn is_empty(&self) -> bool {
        self.holders.is_empty() && self.waiting.is_empty()
    }
}

/// What a target slot's holder shares with the limits: when it last moved a byte, and the
/// token that tells it to give way.
#[derive(Debug)]
pub struct Activity {
    base: Instant,
    /// Microseconds from `base` to the last byte either way.
    last: AtomicU64,
    give_way: CancellationToken,
}

impl Activity {
    fn new(now: Instant) -> Activity {
        Activity {
            base: now,
            last: AtomicU64::new(0),
            give_way: CancellationToken::new(),
        }
    }

    /// Notes traffic at `now`: one relaxed atomic store, cheap enough for every chunk.
    pub fn touch(&self, now: Instant) {
        let us = now.saturating_duration_since(self.base).as_micros();
        self.last
            .store(u64::try_from(us).unwrap_or(u64::MAX), Relaxed);
    }

    /// How long the slot has been held at `now`.
    pub fn age(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.base)
    }

    /// How long it has been without traffic at `now`.
    pub fn idle(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.base + Duration::from_micros(self.last.load(Relaxed)))
    }

    /// Resolves when another user waits for this slot and the holder should close.
    pub async fn give_way(&self) {
        self.give_way.cancelled().await;
    }
}

/// A session that has held a full target's slot this long gives way to a newcomer even when
/// it has traffic (a scan takes under a minute; a keep-alive must not hold a slot for hours).
pub const HELD_LONG: Duration = Duration::from_secs(10 * 60);

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
    client: ClientGuard,
}

impl Admission {
    /// The client key it was admitted under ([`client_key`]).
    pub fn client(&self) -> IpAddr {
        self.client.key
    }
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
    id: u64,
    activity: Arc<Activity>,
}

impl TargetGuard {
    /// The holder's activity: the relay touches it on every byte and closes when told to
    /// give way.
    pub fn activity(&self) -> &Arc<Activity> {
        &self.activity
    }
}

impl Drop for TargetGuard {
    fn drop(&mut self) {
        self.limits
            .leave(self.ip, |s| s.holders.retain(|h| h.id != self.id));
    }
}

/// A newcomer's place in a target's waiting line; leaves it on drop (given up, timed out).
struct Waiting<'a> {
    limits: &'a Limits,
    ip: IpAddr,
    id: u64,
    /// Out of the line already (it took a slot).
    done: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.limits
                .leave(self.ip, |s| s.waiting.retain(|(id, _)| *id != self.id));
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
            next_id: AtomicU64::new(0),
        })
    }

    /// Admits a new session from `client` at `now`, or says which limit refused it.
    pub fn admit(self: &Arc<Self>, client: IpAddr, now: Instant) -> Result<Admission, Limit> {
        self.admit_with(client, now, true)
    }

    /// Spends one of `client`'s new-session tokens at `now` without admitting anything yet:
    /// a server-side scan pays for itself when it is asked for, and takes its concurrency
    /// slots ([`Limits::admit_spent`]) only when it starts.
    pub fn spend(&self, client: IpAddr, now: Instant) -> Result<(), Limit> {
        let mut clients = lock(&self.clients);
        let c = self.refill(&mut clients, client_key(client), now);
        if c.tokens < 1.0 {
            return Err(Limit::Rate);
        }
        c.tokens -= 1.0;
        Ok(())
    }

    /// [`Limits::admit`] for a session whose token [`Limits::spend`] already took.
    pub fn admit_spent(self: &Arc<Self>, client: IpAddr, now: Instant) -> Result<Admission, Limit> {
        self.admit_with(client, now, false)
    }

    /// `client`'s entry with its bucket refilled up to `now`.
    fn refill<'m>(
        &self,
        clients: &'m mut HashMap<IpAddr, Client>,
        key: IpAddr,
        now: Instant,
    ) -> &'m mut Client {
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
        c
    }

    fn admit_with(
        self: &Arc<Self>,
        client: IpAddr,
        now: Instant,
        spend: bool,
    ) -> Result<Admission, Limit> {
        let key = client_key(client);
        let permit = Arc::clone(&self.global)
            .try_acquire_owned()
            .map_err(|_| Limit::Global)?;
        let mut clients = lock(&self.clients);
        let c = self.refill(&mut clients, key, now);
        if c.active >= self.cfg.per_client {
            return Err(Limit::PerClient);
        }
        if spend {
            if c.tokens < 1.0 {
                return Err(Limit::Rate);
            }
            c.tokens -= 1.0;
        }
        c.active += 1;
        drop(clients);
        Ok(Admission {
            _permit: permit,
            client: ClientGuard {
                limits: Arc::clone(self),
                key,
            },
        })
    }

    /// Takes a slot towards `target` for the client key `client`. `yields`: the holder is
    /// a relayed session that gives way when idle (see [`Activity::give_way`]).
    ///
    /// Fairness, not only a count: one client key holds at most `per_client_target` of a
    /// target's slots (waiting included). When every slot is taken, the holder idle the
    /// longest (at least `yield_after`) is told to give way and the newcomer waits for a slot
    /// in arrival order; with no such holder it is refused. Waiting has no deadline of its
    /// own: the caller's connect deadline bounds it (dropping the future leaves the line).
    pub async fn target(
        self: &Arc<Self>,
        target: IpAddr,
        client: IpAddr,
        yields: bool,
    ) -> Result<TargetGuard, Limit> {
        let key = client_key(client);
        let id = self.next_id.fetch_add(1, Relaxed);
        let mut waiting: Option<Waiting<'_>> = None;
        loop {
            let notified = {
                let mut targets = lock(&self.targets);
                let now = Instant::now();
                let slots = targets.entry(target).or_default();
                if waiting.is_none() && slots.of_client(key) >= self.cfg.per_client_target {
                    if slots.is_empty() {
                        targets.remove(&target);
                    }
                    return Err(Limit::PerClientTarget);
                }
                let first = slots.waiting.front().is_none_or(|(w, _)| *w == id);
                if first && slots.holders.len() < self.cfg.per_target {
                    if let Some(w) = waiting.as_mut() {
                        slots.waiting.pop_front();
                        w.done = true;
                    }
                    let activity = Arc::new(Activity::new(now));
                    slots.holders.push(Holder {
                        id,
                        client: key,
                        activity: Arc::clone(&activity),
                        yields,
                        yielding: false,
                    });
                    if !slots.waiting.is_empty() && slots.holders.len() < self.cfg.per_target {
                        slots.notify.notify_waiters();
                    }
                    return Ok(TargetGuard {
                        limits: Arc::clone(self),
                        ip: target,
                        id,
                        activity,
                    });
                }
                if waiting.is_none() {
                    // Slots that will come free for those already waiting: free ones (being
                    // taken) and ones whose holders were told to give way.
                    let coming = self.cfg.per_target.saturating_sub(slots.holders.len())
                        + slots.holders.iter().filter(|h| h.yielding).count();
                    if slots.waiting.len() >= coming {
                        // The holder idle the longest gives way; with nobody idle long
                        // enough, the one held the longest past `HELD_LONG` does (else a
                        // keep-alive every minute would hold a full server for hours).
                        let candidates = || {
                            slots
                                .holders
                                .iter()
                                .enumerate()
                                .filter(|(_, h)| h.yields && !h.yielding)
                        };
                        let idlest = candidates()
                            .map(|(i, h)| (h.activity.idle(now), i))
                            .filter(|(idle, _)| *idle >= self.cfg.yield_after)
                            .max_by_key(|(idle, _)| *idle)
                            .or_else(|| {
                                candidates()
                                    .map(|(i, h)| (h.activity.age(now), i))
                                    .filter(|(age, _)| *age >= HELD_LONG)
                                    .max_by_key(|(age, _)| *age)
                            })
                            .map(|(_, i)| i);
                        let Some(i) = idlest else {
                            if slots.is_empty() {
                                targets.remove(&target);
                            }
                            return Err(Limit::PerTarget);
                        };
                        let h = &mut slots.holders[i];
                        h.yielding = true;
                        h.activity.give_way.cancel();
                    }
                    slots.waiting.push_back((id, key));
                    waiting = Some(Waiting {
                        limits: self,
                        ip: target,
                        id,
                        done: false,
                    });
                }
                // Created under the lock, so no wake-up between here and the await is lost.
                Arc::clone(&slots.notify).notified_owned()
            };
            notified.await;
        }
    }

    /// Updates one target's slots with `f`, wakes its waiters and forgets the target once
    /// nobody holds or waits for it.
    fn leave(&self, ip: IpAddr, f: impl FnOnce(&mut Slots)) {
        let mut targets = lock(&self.targets);
        if let Some(slots) = targets.get_mut(&ip) {
            f(slots);
            if slots.is_empty() {
                targets.remove(&ip);
            } else if !slots.waiting.is_empty() {
                slots.notify.notify_waiters();
            }
        }
    }

    /// Sessions running now.
    pub fn active(&self) -> usize {
        self.cfg.max_sessions - self.global.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize, per_client: usize, per_minute: u32, per_target: usize) -> Arc<Limits> {
        Limits::new(LimitConfig {
            max_sessions: max,
            per_client,
            per_minute,
            per_target,
            per_client_target: per_target,
            yield_after: Duration::from_secs(60),
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

    #[tokio::test]
    async fn concurrency_slots_come_back() {
        let l = limits(2, 1, 100, 1);
        let t0 = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        let c: IpAddr = "2001:db8::2".parse().unwrap();
        let x = l.admit(a, t0).unwrap();
        assert_eq!(x.client(), a);
        assert_eq!(l.admit(a, t0).unwrap_err(), Limit::PerClient);
        let y = l.admit(b, t0).unwrap();
        // Same /64 as b, and the global limit is full anyway.
        assert_eq!(l.admit(c, t0).unwrap_err(), Limit::Global);
        drop(x);
        assert_eq!(l.admit(c, t0).unwrap_err(), Limit::PerClient);
        drop(y);
        assert!(l.admit(c, t0).is_ok());
        let g = l.target(a, b, false).await.unwrap();
        // Nobody holding it gives way (a server-side scan does not).
        assert_eq!(l.target(a, a, true).await.unwrap_err(), Limit::PerTarget);
        drop(g);
        assert!(l.target(a, c, true).await.is_ok());
        assert!(lock(&l.targets).is_empty(), "a free target is forgotten");
    }

    #[tokio::test]
    async fn one_client_holds_only_its_share_of_a_target() {
        let l = Limits::new(LimitConfig {
            per_client_target: 2,
            ..limits(100, 100, 100, 8).cfg
        });
        let server: IpAddr = "198.51.100.7".parse().unwrap();
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let a2: IpAddr = "2001:db8::2".parse().unwrap();
        let b: IpAddr = "192.0.2.1".parse().unwrap();
        let g1 = l.target(server, a, true).await.unwrap();
        let _g2 = l.target(server, a, true).await.unwrap();
        // The same /64 is the same client.
        assert_eq!(
            l.target(server, a2, true).await.unwrap_err(),
            Limit::PerClientTarget
        );
        // Another target, and another client, are unaffected.
        let _other = l.target(a, a, true).await.unwrap();
        let _gb = l.target(server, b, true).await.unwrap();
        drop(g1);
        assert!(l.target(server, a2, true).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn the_idlest_session_gives_way_to_a_newcomer() {
        let l = limits(100, 100, 100, 2);
        let server: IpAddr = "198.51.100.7".parse().unwrap();
        let (a, b, c, d): (IpAddr, IpAddr, IpAddr, IpAddr) = (
            "192.0.2.1".parse().unwrap(),
            "192.0.2.2".parse().unwrap(),
            "192.0.2.3".parse().unwrap(),
            "192.0.2.4".parse().unwrap(),
        );
        let ga = l.target(server, a, true).await.unwrap();
        let gb = l.target(server, b, true).await.unwrap();
        // Nobody has been idle a minute yet: refused, and nobody is told to go.
        assert_eq!(
            l.target(server, c, true).await.unwrap_err(),
            Limit::PerTarget
        );
        tokio::time::advance(Duration::from_secs(90)).await;
        // b talked 40 s ago, a 90 s ago: a is the one to give way.
        gb.activity()
            .touch(Instant::now() - Duration::from_secs(40));
        let waiter = tokio::spawn({
            let l = Arc::clone(&l);
            async move { l.target(server, c, true).await }
        });
        tokio::time::timeout(Duration::from_secs(1), ga.activity().give_way())
            .await
            .expect("a is told to give way");
        assert!(!gb.activity().give_way.is_cancelled());
        // The slot a gives back is c's, not a later newcomer's; with a already going and b
        // active only 40 s, d is refused.
        assert_eq!(
            l.target(server, d, true).await.unwrap_err(),
            Limit::PerTarget
        );
        assert!(!waiter.is_finished());
        drop(ga);
        let gc = waiter.await.unwrap().expect("c gets a's slot");
        assert!(!gc.activity().give_way.is_cancelled());
        // A newcomer that gives up leaves the line.
        tokio::time::advance(Duration::from_secs(60)).await;
        let gave_up =
            tokio::time::timeout(Duration::from_millis(10), l.target(server, d, true)).await;
        assert!(gave_up.is_err(), "waits for b to give way");
        assert!(gb.activity().give_way.is_cancelled());
        drop(gb);
        drop(gc);
        assert!(lock(&l.targets).is_empty(), "nobody waits or holds");
    }
}
