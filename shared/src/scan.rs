//! The scanner: telnetlib3-fingerprint's probing shell as a sans-IO state machine (spec §2.5–
//! §3.3): negotiation wait, settle and banner reads, prompt rounds, the three probes and the
//! MSSP wait, then the record.
//!
//! Bytes go in through [`Scanner::handle_input`] (the protocol reacts at once, like
//! telnetlib3's `data_received`); phase decisions happen in [`Scanner::handle_timeout`], which
//! the driver calls whenever [`Scanner::poll_timeout`] is due — immediately after input, or
//! when a timer expires. That split mirrors telnetlib3's protocol callbacks versus its shell
//! coroutine, and keeps a phase from ending in the middle of a received chunk. The probes and
//! the MSSP wait decide on telnetlib3's 50 ms poll ticks ([`POLL_INTERVAL`]), not when their
//! question is answered: replies between the answer and the tick still count inside the probe.

use crate::ansi::{self, VirtualCursor};
use crate::config::{ScanConfig, ScanType};
use crate::event::{Event, EventKind, Phase};
use crate::prompt;
use crate::protocol::{PendingKind, Protocol};
use crate::record::{ProbeStatus, ScanOutcome};
use crate::telopt::{self, TelOpt, Verb};
use crate::time::{Micros, Timestamp};
use crate::transcript::{Entry, Transcript};

/// telnetlib3's `connect_maxwait`: negotiation is declared over (complete or failed) by now.
pub const NEGOTIATION_MAX_WAIT: Micros = Micros::from_millis(4000);
/// `_NEGOTIATION_SETTLE`: the first read's quiet time and maximum.
pub const SETTLE: Micros = Micros::from_millis(500);
/// `_PROBE_TIMEOUT`: each probe's window.
pub const PROBE_TIMEOUT: Micros = Micros::from_millis(500);
/// The probes and the MSSP wait look at the option states only every this often
/// (`await asyncio.sleep(0.05)` in their poll loops). What a reply changes depends on whether
/// it arrives before or after the tick that ends a probe (loop detection restores the states
/// it saved at that tick), so iacscope decides on the same ticks, never sooner.
pub const POLL_INTERVAL: Micros = Micros::from_millis(50);
/// `_MAX_PROMPT_REPLIES`.
pub const MAX_PROMPT_ROUNDS: usize = 5;
/// Largest banner (before or after the return) kept; beyond it bytes are dropped and a
/// violation recorded. telnetlib3 keeps whatever arrives within `--banner-max-wait`.
pub const MAX_BANNER_BYTES: usize = 1 << 20;

/// Prompt and menu detection look at no more than this many bytes at the end of the text.
/// telnetlib3 scans all of it, and some of its patterns backtrack badly: a hostile 64 KiB
/// banner costs Python (and a faithful matcher) tens of seconds, which would freeze a browser
/// tab. Prompts sit at the end of what the server sent, so the tail decides in practice;
/// banners longer than this may differ from telnetlib3 in which prompt reply is chosen.
pub const MAX_PROMPT_SCAN: usize = 4096;

/// The inline menu check runs on every chunk over the text read so far; it looks at this
/// much of its end (a menu completed by the new chunk ends there).
pub const MAX_INLINE_SCAN: usize = 1024;

/// Raw bytes of one input searched for a SyncTERM font switch.
const MAX_RAW_INSTANT: usize = 64 * 1024;

/// How many raw bytes are kept to find a SyncTERM font sequence split across reads.
const RAW_FONT_TAIL: usize = 32;

fn tail(b: &[u8], n: usize) -> &[u8] {
    &b[b.len().saturating_sub(n)..]
}

/// One "read until quiet" call in progress.
#[derive(Debug)]
struct Read {
    /// `now + max_wait` at the start.
    deadline: Timestamp,
    /// The current wait for a chunk ends here.
    wait_until: Timestamp,
    quiet: Micros,
    collected: Vec<u8>,
    stripped_accum: Vec<u8>,
    esc_responded: bool,
    menu_responded: bool,
}

impl Read {
    fn new(now: Timestamp, quiet: Micros, max: Micros) -> Read {
        let deadline = now + max;
        Read {
            deadline,
            wait_until: now + quiet.min(deadline - now),
            quiet,
            collected: Vec::new(),
            stripped_accum: Vec::new(),
            esc_responded: false,
            menu_responded: false,
        }
    }
}

/// Which read is running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadKind {
    Settle,
    Banner,
    PromptRound,
}

#[derive(Debug)]
enum State {
    Negotiating,
    Reading(ReadKind),
    Capability {
        poll: Poll,
        to_probe: Vec<TelOpt>,
    },
    WrongDirection {
        poll: Poll,
    },
    Loop {
        remote: bool,
        poll: Poll,
        agreed: Vec<TelOpt>,
        saved: Vec<(TelOpt, Option<bool>)>,
    },
    MsspWait {
        poll: Poll,
    },
    Done,
}

/// A poll loop of the probing shell: its condition is looked at on ticks only, the first one
/// at once (before anything can have been answered), then [`POLL_INTERVAL`] after the moment
/// each tick actually ran, as `asyncio.sleep` counts, until the deadline.
#[derive(Debug, Clone, Copy)]
struct Poll {
    next: Timestamp,
    deadline: Timestamp,
    /// The MSSP wait sleeps `min(0.05, remaining)`, so its last tick lands on the deadline;
    /// the probes sleep a whole interval and end on the first tick at or past it.
    clamp: bool,
}

/// What a poll loop does at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tick {
    /// Between ticks: the condition is not looked at.
    Wait,
    /// A tick: look at the condition, and stop if it holds.
    Check,
    /// The deadline has passed: stop whatever the states say.
    Expired,
}

impl Poll {
    /// A probe's poll loop: [`PROBE_TIMEOUT`] long, ending on the first tick at or past its end.
    fn probe(now: Timestamp) -> Poll {
        Poll {
            next: now,
            deadline: now + PROBE_TIMEOUT,
            clamp: false,
        }
    }

    /// The MSSP wait's loop: until `deadline`, its last sleep cut short to end there.
    fn until(now: Timestamp, deadline: Timestamp) -> Poll {
        Poll {
            next: now,
            deadline,
            clamp: true,
        }
    }

    fn at(&self, now: Timestamp) -> Tick {
        if now < self.next {
            Tick::Wait
        } else if now >= self.deadline {
            Tick::Expired
        } else {
            Tick::Check
        }
    }

    /// The condition did not hold at the tick that ran at `now`: sleep again.
    fn sleep(&mut self, now: Timestamp) {
        let next = now + POLL_INTERVAL;
        self.next = if self.clamp {
            next.min(self.deadline)
        } else {
            next
        };
    }
}

/// A telnetlib3-fingerprint compatible scan of one connection.
pub struct Scanner {
    proto: Protocol,
    state: State,
    now: Timestamp,
    connected_at: Timestamp,
    /// Shell start (`start_time` in telnetlib3).
    t0: Option<Timestamp>,
    eof: bool,
    wake: bool,
    command_since_check: bool,
    read: Option<Read>,
    cursor: VirtualCursor,
    esc_inline: bool,
    menu_inline: bool,
    settle: Vec<u8>,
    banner_before: Vec<u8>,
    after_chunks: Vec<Vec<u8>>,
    prompt_round: usize,
    latest: Vec<u8>,
    previous: Vec<u8>,
    detected: Option<Vec<u8>>,
    enq_reply_at: Option<Timestamp>,
    outcome: ScanOutcome,
    transcript: Transcript,
    pending_tx: Option<Vec<u8>>,
    raw_tail: Vec<u8>,
    /// The first SyncTERM font found in the raw bytes of the current instant.
    instant_font: Option<&'static str>,
}

impl Scanner {
    /// Starts a scan at the moment the TCP (or TLS) connection is established: the proactive
    /// WILL/DO burst is queued at once (spec §2.2).
    pub fn new(cfg: ScanConfig, now: Timestamp) -> Scanner {
        let encoding = cfg.encoding.clone();
        let mut s = Scanner {
            proto: Protocol::new(cfg),
            state: State::Negotiating,
            now,
            connected_at: now,
            t0: None,
            eof: false,
            wake: false,
            command_since_check: false,
            read: None,
            cursor: VirtualCursor::new(&encoding),
            esc_inline: false,
            menu_inline: false,
            settle: Vec::new(),
            banner_before: Vec::new(),
            after_chunks: Vec::new(),
            prompt_round: 0,
            latest: Vec::new(),
            previous: Vec::new(),
            detected: None,
            enq_reply_at: None,
            outcome: ScanOutcome::default(),
            transcript: Transcript::new(),
            pending_tx: None,
            raw_tail: Vec::new(),
            instant_font: None,
        };
        s.proto.set_now(now);
        let cfg = s.proto.config().clone();
        crate::replay::config_to_meta(&cfg, &mut s.transcript);
        s.phase_start(Phase::Negotiating);
        // Python iterates a hash set here; iacscope uses the EXTENDED order, WILLs first.
        let mut will: Vec<TelOpt> = telopt::EXTENDED.to_vec();
        will.extend(s.proto.config().always_will.iter().copied());
        let mut doo: Vec<TelOpt> = telopt::EXTENDED.to_vec();
        doo.extend(s.proto.config().always_do.iter().copied());
        for o in dedup(will) {
            s.proto.iac(Verb::Will, o);
        }
        for o in dedup(doo) {
            s.proto.iac(Verb::Do, o);
        }
        s
    }

    /// The configuration.
    pub fn config(&self) -> &ScanConfig {
        self.proto.config()
    }

    /// The protocol state (option tables, encoding, MUD data).
    pub fn protocol(&self) -> &Protocol {
        &self.proto
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        match &self.state {
            State::Negotiating => Phase::Negotiating,
            State::Reading(ReadKind::Settle | ReadKind::Banner) => Phase::Banner,
            State::Reading(ReadKind::PromptRound) => Phase::Prompt,
            State::Capability { .. } => Phase::CapabilityProbe,
            State::WrongDirection { .. } => Phase::WrongDirectionProbe,
            State::Loop { .. } => Phase::LoopDetection,
            State::MsspWait { .. } => Phase::MsspWait,
            State::Done => Phase::Done,
        }
    }

    /// Whether the scan is over (the record is ready and the connection can be closed).
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// What the scan found (complete once [`Scanner::is_done`]).
    pub fn outcome(&self) -> &ScanOutcome {
        &self.outcome
    }

    /// Everything that went in and out, for replay and permalinks.
    pub fn transcript(&self) -> &Transcript {
        &self.transcript
    }

    /// Raw in-band banner bytes collected so far: (before the return, after it).
    pub fn banner_bytes(&self) -> (Vec<u8>, Vec<u8>) {
        let mut before = self.settle.clone();
        before.extend_from_slice(&self.banner_before);
        if matches!(
            self.read.as_ref().map(|_| &self.state),
            Some(State::Reading(ReadKind::Settle | ReadKind::Banner))
        ) {
            if let Some(r) = &self.read {
                before.extend_from_slice(&r.collected);
            }
        }
        let mut after = self.after_chunks.concat();
        if let (State::Reading(ReadKind::PromptRound), Some(r)) = (&self.state, &self.read) {
            after.extend_from_slice(&r.collected);
        }
        (before, after)
    }

    /// The session encoding now.
    pub fn encoding(&self) -> &str {
        &self.proto.encoding
    }

    // ----- inputs -------------------------------------------------------------------------

    /// Bytes received from the server.
    pub fn handle_input(&mut self, now: Timestamp, data: &[u8]) {
        self.set_now(now);
        self.transcript.push(Entry::Recv(now, data.to_vec()));
        if self.eof {
            return;
        }
        let mut edge = std::mem::take(&mut self.raw_tail);
        let head = data.len().min(RAW_FONT_TAIL);
        edge.extend_from_slice(&data[..head]);
        if self.instant_font.is_none() {
            self.instant_font = ansi::detect_syncterm_font(&edge)
                .or_else(|| ansi::detect_syncterm_font(&data[..data.len().min(MAX_RAW_INSTANT)]));
        }
        if data.len() >= RAW_FONT_TAIL {
            edge.clear();
            edge.extend_from_slice(&data[data.len() - RAW_FONT_TAIL..]);
        } else {
            let cut = edge.len().saturating_sub(RAW_FONT_TAIL);
            edge.drain(..cut);
        }
        self.raw_tail = edge;
        self.proto.receive(data);
        if self.proto.saw_command {
            self.command_since_check = true;
        }
        self.wake = true;
        self.flush_transmit();
    }

    /// The server closed the connection (or it was lost).
    pub fn handle_eof(&mut self, now: Timestamp) {
        self.set_now(now);
        self.transcript.push(Entry::Eof(now));
        if self.eof {
            return;
        }
        self.eof = true;
        self.proto.closing = true;
        self.proto.event(EventKind::Closed);
        self.wake = true;
    }

    /// A timer is due (or input arrived): advance the shell.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.set_now(now);
        if !matches!(self.transcript.entries.last(), Some(Entry::Tick(t)) if *t == now) {
            self.transcript.push(Entry::Tick(now));
        }
        self.wake = false;
        self.raw_font_switch();
        self.proto.end_of_instant();
        self.drive();
        self.flush_transmit();
    }

    /// When [`Scanner::handle_timeout`] must be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        if self.wake {
            return Some(self.now);
        }
        match &self.state {
            State::Negotiating => Some(self.connected_at + NEGOTIATION_MAX_WAIT),
            State::Reading(_) => self.read.as_ref().map(|r| r.wait_until),
            State::Capability { poll, .. }
            | State::WrongDirection { poll }
            | State::Loop { poll, .. }
            | State::MsspWait { poll } => Some(poll.next),
            State::Done => None,
        }
    }

    /// Bytes to send to the server.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.flush_transmit();
        self.pending_tx.take()
    }

    /// The next timeline event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.proto.poll_event()
    }

    /// telnetlib3's `data_received` looks for SyncTERM font switches in the raw bytes,
    /// before any telnet processing (spec 2.7, "also runs on raw TCP data"). iacscope looks
    /// once per instant, over everything received in it plus the end of the previous input,
    /// so that a sequence split across reads is still seen and splitting never matters.
    fn raw_font_switch(&mut self) {
        if let Some(font) = self.instant_font.take() {
            if !self.proto.encoding_explicit && self.proto.encoding != font {
                self.proto.note(format!(
                    "SyncTERM font switch in raw data: encoding {:?} -> {font:?}",
                    self.proto.encoding
                ));
                self.proto.encoding = font.to_owned();
                self.proto.encoding_source = "SyncTERM font";
            }
        }
    }

    fn set_now(&mut self, now: Timestamp) {
        // Time never goes backwards inside the engine.
        if now > self.now {
            self.now = now;
        }
        self.proto.set_now(self.now);
    }

    fn flush_transmit(&mut self) {
        if let Some(b) = self.proto.poll_transmit() {
            self.transcript.push(Entry::Send(self.now, b.clone()));
            match &mut self.pending_tx {
                Some(p) => p.extend_from_slice(&b),
                None => self.pending_tx = Some(b),
            }
        }
    }

    fn phase_start(&mut self, phase: Phase) {
        self.proto.event(EventKind::PhaseStart { phase });
    }

    fn phase_end(&mut self, phase: Phase, outcome: String) {
        self.proto.event(EventKind::PhaseEnd { phase, outcome });
    }

    // ----- the shell ----------------------------------------------------------------------

    fn drive(&mut self) {
        // Each step either waits (returns false) or moves to the next state (true).
        let mut guard = 0;
        while self.step() {
            guard += 1;
            if guard > 64 {
                // Every step consumes a state; this cannot loop, but a bug must not hang.
                self.proto.violation("internal: scanner made no progress");
                break;
            }
        }
    }

    fn step(&mut self) -> bool {
        let now = self.now;
        match &mut self.state {
            State::Negotiating => {
                let elapsed = now - self.connected_at;
                let check = std::mem::take(&mut self.command_since_check);
                let complete = !self.proto.pending.any();
                if self.eof {
                    self.phase_end(
                        Phase::Negotiating,
                        format!("connection closed after {:.2}s", elapsed.as_secs_f64()),
                    );
                } else if check && complete {
                    self.phase_end(
                        Phase::Negotiating,
                        format!("negotiation complete after {:.2}s", elapsed.as_secs_f64()),
                    );
                } else if elapsed >= NEGOTIATION_MAX_WAIT {
                    let text = if complete {
                        format!("negotiation complete after {:.2}s", elapsed.as_secs_f64())
                    } else {
                        format!(
                            "negotiation failed after {:.2}s; no reply to: {}",
                            elapsed.as_secs_f64(),
                            self.proto.pending.outstanding().join(", ")
                        )
                    };
                    self.phase_end(Phase::Negotiating, text);
                } else {
                    return false;
                }
                self.t0 = Some(now);
                // The shell resets the session encoding to `--encoding` when it starts
                // (fingerprinting_client_shell), so a CHARSET or font switch handled during
                // negotiation does not reach the record. The spec's §9 does not say this; the
                // tool wins.
                let enc = self.proto.config().encoding.clone();
                if self.proto.encoding != enc {
                    self.proto.note(format!(
                        "shell start resets the session encoding {:?} -> {enc:?}",
                        self.proto.encoding
                    ));
                }
                self.proto.encoding_explicit = self.proto.config().encoding_explicit();
                self.proto.encoding_source = if self.proto.encoding_explicit {
                    "flag"
                } else {
                    "default"
                };
                self.proto.encoding = enc.clone();
                self.cursor = VirtualCursor::new(&enc);
                self.phase_start(Phase::Banner);
                self.start_read(ReadKind::Settle);
                true
            }
            State::Reading(kind) => {
                let kind = *kind;
                if !self.pump_read() {
                    return false;
                }
                let collected = self.read.take().map(|r| r.collected).unwrap_or_default();
                self.after_read(kind, collected);
                true
            }
            State::Capability { poll, to_probe } => {
                match poll.at(now) {
                    Tick::Wait => return false,
                    Tick::Check => {
                        if !to_probe.iter().all(|&o| self.proto.remote.get(o).is_some()) {
                            poll.sleep(now);
                            return false;
                        }
                    }
                    Tick::Expired => {}
                }
                let to_probe = std::mem::take(to_probe);
                for o in to_probe {
                    let st = match self.proto.remote.get(o) {
                        Some(true) => ProbeStatus::Will,
                        Some(false) => ProbeStatus::Wont,
                        None => ProbeStatus::Timeout,
                    };
                    if let Some(slot) = self.outcome.probe.iter_mut().find(|(p, _)| *p == o) {
                        slot.1 = st;
                    }
                    self.proto.event(EventKind::ProbeResult {
                        phase: Phase::CapabilityProbe,
                        opt: o,
                        outcome: st.as_str().into(),
                    });
                }
                let will = self
                    .outcome
                    .probe
                    .iter()
                    .filter(|(_, s)| *s == ProbeStatus::Will)
                    .count();
                self.phase_end(
                    Phase::CapabilityProbe,
                    format!("{will} of {} options offered", self.outcome.probe.len()),
                );
                self.start_wrong_direction();
                true
            }
            State::WrongDirection { poll } => {
                match poll.at(now) {
                    Tick::Wait => return false,
                    Tick::Check => {
                        let done = self.proto.remote.get(TelOpt::NAWS).is_some()
                            && self.proto.remote.get(TelOpt::TTYPE).is_some()
                            && self.proto.local.get(TelOpt::ECHO).is_some();
                        if !done {
                            poll.sleep(now);
                            return false;
                        }
                    }
                    Tick::Expired => {}
                }
                let mut wrong = Vec::new();
                for (o, accepted) in [
                    (TelOpt::NAWS, self.proto.remote.enabled(TelOpt::NAWS)),
                    (TelOpt::TTYPE, self.proto.remote.enabled(TelOpt::TTYPE)),
                    (TelOpt::ECHO, self.proto.local.enabled(TelOpt::ECHO)),
                ] {
                    let outcome = if accepted {
                        "wrong-accept"
                    } else {
                        "correct-refuse"
                    };
                    self.proto.event(EventKind::ProbeResult {
                        phase: Phase::WrongDirectionProbe,
                        opt: o,
                        outcome: outcome.into(),
                    });
                    if accepted {
                        wrong.push(o);
                    }
                }
                self.outcome.wrong_direction = wrong;
                self.proto.server_role = false;
                self.phase_end(
                    Phase::WrongDirectionProbe,
                    format!(
                        "{} wrong-direction requests accepted",
                        self.outcome.wrong_direction.len()
                    ),
                );
                self.phase_start(Phase::LoopDetection);
                self.start_loop_pass(true);
                true
            }
            State::Loop {
                remote,
                poll,
                agreed,
                ..
            } => {
                let remote = *remote;
                match poll.at(now) {
                    Tick::Wait => return false,
                    Tick::Check => {
                        let table = if remote {
                            &self.proto.remote
                        } else {
                            &self.proto.local
                        };
                        if !agreed.iter().all(|&o| table.get(o).is_some()) {
                            poll.sleep(now);
                            return false;
                        }
                    }
                    Tick::Expired => {}
                }
                let State::Loop { agreed, saved, .. } =
                    std::mem::replace(&mut self.state, State::Done)
                else {
                    return false;
                };
                self.finish_loop_pass(remote, agreed, saved);
                if remote {
                    self.start_loop_pass(false);
                } else {
                    let n = self.outcome.looped.len();
                    self.phase_end(Phase::LoopDetection, format!("{n} options looped"));
                    self.after_probes();
                }
                true
            }
            State::MsspWait { poll } => {
                let have = self.proto.mud.mssp.is_some();
                match poll.at(now) {
                    // The wait cannot be satisfied once the connection is closed: telnetlib3
                    // sits it out anyway, iacscope does not (same result, sooner: nothing can
                    // change a state after the end of the stream).
                    Tick::Wait if !self.eof => return false,
                    Tick::Check if !have && !self.eof => {
                        poll.sleep(now);
                        return false;
                    }
                    _ => {}
                }
                let text = if have {
                    "MSSP data arrived".to_owned()
                } else {
                    "no MSSP data".to_owned()
                };
                self.phase_end(Phase::MsspWait, text);
                self.finish();
                true
            }
            State::Done => false,
        }
    }

    fn start_read(&mut self, kind: ReadKind) {
        let cfg = self.proto.config();
        let (quiet, max) = match kind {
            ReadKind::Settle => (SETTLE, SETTLE),
            ReadKind::Banner | ReadKind::PromptRound => {
                (cfg.banner_quiet_time, cfg.banner_max_wait)
            }
        };
        self.read = Some(Read::new(self.now, quiet, max));
        self.state = State::Reading(kind);
    }

    /// Reads chunks while the wait lasts; returns true when the read is over.
    fn pump_read(&mut self) -> bool {
        let now = self.now;
        let max_chunk = self.proto.config().banner_max_bytes.max(1);
        loop {
            let Some(r) = self.read.as_ref() else {
                return true;
            };
            if !self.proto.inband.is_empty() {
                if now > r.wait_until {
                    return true;
                }
                let n = self.proto.inband.len().min(max_chunk);
                let chunk: Vec<u8> = self.proto.inband.drain(..n).collect();
                self.handle_chunk(&chunk);
                let Some(r) = self.read.as_mut() else {
                    return true;
                };
                if now >= r.deadline {
                    return true;
                }
                r.wait_until = now + r.quiet.min(r.deadline - now);
                continue;
            }
            if self.eof || now >= r.wait_until {
                return true;
            }
            return false;
        }
    }

    /// One chunk of a read: ANSI probe replies, font switches, inline prompt replies.
    fn handle_chunk(&mut self, chunk: &[u8]) {
        let explicit = self.proto.encoding_explicit;
        // ENQ is answered once per chunk in telnetlib3; iacscope answers it once per instant,
        // so that how the bytes were split does not change the replies.
        let enq_ok = self.enq_reply_at != Some(self.now);
        if let Some(mut replies) = ansi::respond_to_probes(chunk, &mut self.cursor) {
            if chunk.contains(&0x05) {
                if enq_ok {
                    self.enq_reply_at = Some(self.now);
                } else if let Some(p) = replies.iter().position(|&b| b == b'\r') {
                    replies.remove(p);
                }
            }
            self.proto.note(format!(
                "answered terminal queries (DSR {} so far)",
                self.cursor.dsr_requests
            ));
            self.proto.send_data(&replies);
        }
        if let Some(font) = ansi::detect_syncterm_font(chunk) {
            if explicit {
                self.proto
                    .note(format!("SyncTERM font {font} ignored (explicit encoding)"));
            } else {
                self.proto.note(format!(
                    "SyncTERM font switch: encoding {:?} -> {font:?}",
                    self.proto.encoding
                ));
                self.set_encoding(font, "SyncTERM font");
            }
        }
        let stripped = ansi::strip_escapes(chunk);
        let Some(r) = self.read.as_mut() else {
            return;
        };
        r.stripped_accum.extend_from_slice(&stripped);
        if r.stripped_accum.len() > 2 * MAX_INLINE_SCAN {
            // Only the tail is ever searched; keep memory bounded too.
            let cut = r.stripped_accum.len() - MAX_INLINE_SCAN;
            r.stripped_accum.drain(..cut);
        }
        if r.collected.len() + chunk.len() <= MAX_BANNER_BYTES {
            r.collected.extend_from_slice(chunk);
        } else {
            let room = MAX_BANNER_BYTES.saturating_sub(r.collected.len());
            r.collected.extend_from_slice(&chunk[..room]);
            self.proto.violation(format!(
                "banner over {MAX_BANNER_BYTES} bytes; the rest is not kept"
            ));
        }
        let Some(r) = self.read.as_mut() else {
            return;
        };
        let mut send: Vec<Vec<u8>> = Vec::new();
        let mut new_encoding = None;
        if !r.esc_responded {
            if prompt::esc_twice(tail(&stripped, MAX_PROMPT_SCAN)) {
                send.push(b"\x1b\x1b".to_vec());
                r.esc_responded = true;
                self.esc_inline = true;
            } else if prompt::esc_once(tail(&stripped, MAX_PROMPT_SCAN)) {
                send.push(b"\x1b".to_vec());
                r.esc_responded = true;
                self.esc_inline = true;
            }
        }
        if !r.menu_responded {
            if !explicit {
                if let Some(n) = prompt::menu_utf8(tail(&r.stripped_accum, MAX_INLINE_SCAN)) {
                    let mut reply = n;
                    reply.extend_from_slice(b"\r\n");
                    send.push(prompt::reencode_prompt(&reply, &self.proto.encoding));
                    r.menu_responded = true;
                    self.menu_inline = true;
                    new_encoding = Some("utf-8");
                }
            } else if prompt::codepage_prompt(tail(&r.stripped_accum, MAX_INLINE_SCAN)) {
                send.push(prompt::reencode_prompt(b"\r\n", &self.proto.encoding));
                r.menu_responded = true;
                self.menu_inline = true;
            }
        }
        for s in send {
            self.proto.send_data(&s);
        }
        if let Some(e) = new_encoding {
            self.proto.note(format!(
                "UTF-8 menu answered; encoding {:?} -> \"utf-8\"",
                self.proto.encoding
            ));
            self.set_encoding(e, "UTF-8 menu");
        }
    }

    fn set_encoding(&mut self, enc: &str, source: &'static str) {
        self.proto.encoding = enc.to_owned();
        self.proto.encoding_source = source;
        self.cursor.encoding = enc.to_owned();
    }

    fn after_read(&mut self, kind: ReadKind, collected: Vec<u8>) {
        match kind {
            ReadKind::Settle => {
                self.settle = collected;
                self.start_read(ReadKind::Banner);
            }
            ReadKind::Banner => {
                self.banner_before = collected;
                let mut before = self.settle.clone();
                before.extend_from_slice(&self.banner_before);
                self.phase_end(
                    Phase::Banner,
                    format!("{} bytes before the return", before.len()),
                );
                self.latest = before;
                self.phase_start(Phase::Prompt);
                self.prompt_reply();
            }
            ReadKind::PromptRound => {
                self.after_chunks.push(collected.clone());
                let previous = std::mem::take(&mut self.previous);
                self.latest = collected;
                let stop = if self.eof || self.latest.is_empty() {
                    Some("connection closed or nothing more was sent")
                } else if self.latest == previous {
                    Some("the server repeated itself")
                } else if self.detected.is_none()
                    && prompt::detect_prompt(tail(&self.latest, MAX_PROMPT_SCAN))
                        .response
                        .is_none()
                {
                    Some("no prompt found")
                } else if self.prompt_round >= MAX_PROMPT_ROUNDS {
                    Some("5 prompt rounds done")
                } else {
                    None
                };
                match stop {
                    Some(why) => {
                        let n: usize = self.after_chunks.iter().map(Vec::len).sum();
                        self.phase_end(Phase::Prompt, format!("{why}; {n} bytes after the return"));
                        self.after_prompts();
                    }
                    None => self.prompt_reply(),
                }
            }
        }
    }

    /// One prompt round: detect, reply, read.
    fn prompt_reply(&mut self) {
        self.prompt_round += 1;
        let result = prompt::detect_prompt(tail(&self.latest, MAX_PROMPT_SCAN));
        let mut detected = result.response.clone();
        if matches!(detected.as_deref(), Some(b"\x1b\x1b" | b"\x1b")) && self.esc_inline {
            self.esc_inline = false;
            detected = None;
        }
        if result.encoding.is_some() && self.menu_inline {
            self.menu_inline = false;
            detected = None;
        }
        if result.encoding.is_some() && self.proto.encoding_explicit {
            detected = Some(b"\r\n".to_vec());
        }
        let reply = detected.clone().unwrap_or_else(|| b"\r\n".to_vec());
        let reply = prompt::reencode_prompt(&reply, &self.proto.encoding);
        self.proto.note(match &detected {
            Some(d) => format!(
                "prompt round {}: replying {}",
                self.prompt_round,
                crate::event::preview(d)
            ),
            None => format!(
                "prompt round {}: no prompt found, sending return",
                self.prompt_round
            ),
        });
        self.proto.send_data(&reply);
        if let Some(enc) = result.encoding {
            if !self.proto.encoding_explicit {
                self.proto.note(format!(
                    "prompt chose an encoding: {:?} -> {enc:?}",
                    self.proto.encoding
                ));
                self.set_encoding(enc, "prompt");
            }
        }
        self.detected = detected;
        self.previous = std::mem::take(&mut self.latest);
        self.start_read(ReadKind::PromptRound);
    }

    fn after_prompts(&mut self) {
        self.outcome.option_states = Some(crate::record::option_states(&self.proto));
        if self.eof {
            self.proto
                .note("connection closed: no probes (probe timing 0.0)");
            self.outcome.probe_time = Micros(0);
            self.outcome.probe_ran = false;
            self.after_probes();
            return;
        }
        self.outcome.probe_ran = true;
        self.outcome.probe_started = Some(self.now);
        self.phase_start(Phase::CapabilityProbe);
        let full = self.proto.config().scan_type == ScanType::Full;
        let mut to_probe = Vec::new();
        self.outcome.probe.clear();
        for o in telopt::probe_options(full) {
            let st = match self.proto.remote.get(o) {
                Some(true) => ProbeStatus::Will,
                Some(false) => ProbeStatus::Wont,
                None => {
                    to_probe.push(o);
                    ProbeStatus::Timeout
                }
            };
            if self.proto.remote.get(o).is_some() {
                self.proto.event(EventKind::ProbeResult {
                    phase: Phase::CapabilityProbe,
                    opt: o,
                    outcome: format!("{} (already negotiated)", st.as_str()),
                });
            }
            self.outcome.probe.push((o, st));
        }
        for &o in &to_probe {
            self.proto.iac(Verb::Do, o);
        }
        self.state = State::Capability {
            poll: Poll::probe(self.now),
            to_probe,
        };
    }

    fn start_wrong_direction(&mut self) {
        self.phase_start(Phase::WrongDirectionProbe);
        self.proto.server_role = true;
        // Python's order of DO NAWS / DO TTYPE is random; iacscope sends NAWS first.
        self.proto.send_unguarded(Verb::Do, TelOpt::NAWS);
        self.proto.send_unguarded(Verb::Do, TelOpt::TTYPE);
        self.proto.send_unguarded(Verb::Will, TelOpt::ECHO);
        self.state = State::WrongDirection {
            poll: Poll::probe(self.now),
        };
    }

    fn start_loop_pass(&mut self, remote: bool) {
        let (kind, verb) = loop_pass_commands(remote);
        let agreed: Vec<TelOpt> = self
            .table(remote)
            .items()
            .filter(|(_, v)| *v == Some(true))
            .map(|(o, _)| o)
            .collect();
        if agreed.is_empty() {
            if remote {
                self.start_loop_pass(false);
            } else {
                let n = self.outcome.looped.len();
                self.phase_end(Phase::LoopDetection, format!("{n} options looped"));
                self.after_probes();
            }
            return;
        }
        let mut saved = Vec::new();
        for &o in &agreed {
            let table = self.table_mut(remote);
            saved.push((o, table.get(o)));
            table.set(o, None);
            self.proto.pending.remove(kind, o);
        }
        self.proto.loop_detection = true;
        self.proto.note(format!(
            "loop detection: re-sending {} for {} agreed options",
            verb,
            agreed.len()
        ));
        for &o in &agreed {
            self.proto.iac(verb, o);
        }
        self.state = State::Loop {
            remote,
            poll: Poll::probe(self.now),
            agreed,
            saved,
        };
    }

    /// The option table a loop-detection pass works on: the server's (remote) or ours.
    fn table(&self, remote: bool) -> &crate::protocol::OptTable {
        if remote {
            &self.proto.remote
        } else {
            &self.proto.local
        }
    }

    fn table_mut(&mut self, remote: bool) -> &mut crate::protocol::OptTable {
        if remote {
            &mut self.proto.remote
        } else {
            &mut self.proto.local
        }
    }

    fn finish_loop_pass(
        &mut self,
        remote: bool,
        agreed: Vec<TelOpt>,
        saved: Vec<(TelOpt, Option<bool>)>,
    ) {
        let (kind, _) = loop_pass_commands(remote);
        self.proto.loop_detection = false;
        for &o in &agreed {
            if self.table(remote).get(o).is_some() {
                let name = o.json_name();
                if !self.outcome.looped.contains(&name) {
                    self.outcome.looped.push(name);
                }
                self.proto.event(EventKind::ProbeResult {
                    phase: Phase::LoopDetection,
                    opt: o,
                    outcome: "looped".into(),
                });
            }
        }
        for (o, v) in saved {
            self.table_mut(remote).set(o, v);
        }
        for &o in &agreed {
            self.proto.pending.remove(kind, o);
        }
    }

    fn after_probes(&mut self) {
        if let Some(start) = self.outcome.probe_started {
            self.outcome.probe_time = self.now - start;
        }
        self.outcome.looped.sort();
        let t0 = self.t0.unwrap_or(self.connected_at);
        let deadline = t0 + self.proto.config().mssp_wait;
        if self.proto.remote.enabled(TelOpt::MSSP) && self.proto.mud.mssp.is_none() && !self.eof {
            self.phase_start(Phase::MsspWait);
            self.state = State::MsspWait {
                poll: Poll::until(self.now, deadline),
            };
            return;
        }
        self.finish();
    }

    fn finish(&mut self) {
        let t0 = self.t0.unwrap_or(self.connected_at);
        self.outcome.total_time = self.now - t0;
        let (before, after) = self.banner_bytes_final();
        self.outcome
            .finish(&self.proto, before, after, &self.cursor);
        self.state = State::Done;
        self.read = None;
        self.phase_start(Phase::Done);
        let fp = self.outcome.fingerprint.clone();
        self.phase_end(Phase::Done, format!("fingerprint {fp}"));
    }

    fn banner_bytes_final(&self) -> (Vec<u8>, Vec<u8>) {
        let mut before = self.settle.clone();
        before.extend_from_slice(&self.banner_before);
        (before, self.after_chunks.concat())
    }
}

/// What a loop-detection pass re-sends: DO for the server's options, WILL for ours.
fn loop_pass_commands(remote: bool) -> (PendingKind, Verb) {
    if remote {
        (PendingKind::Do, Verb::Do)
    } else {
        (PendingKind::Will, Verb::Will)
    }
}

fn dedup(v: Vec<TelOpt>) -> Vec<TelOpt> {
    let mut out: Vec<TelOpt> = Vec::with_capacity(v.len());
    for o in v {
        if !out.contains(&o) {
            out.push(o);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    //! The probes decide on telnetlib3's poll ticks, never in between (issue 11).
    use super::*;
    use crate::event::EventKind;

    const IAC: u8 = 255;
    const WILL: u8 = 251;
    const WONT: u8 = 252;

    fn ms(v: u64) -> Timestamp {
        Timestamp(v * 1000)
    }

    /// Runs every timer due up to `until` at its own instant, collecting events.
    fn run_until(s: &mut Scanner, until: Timestamp, events: &mut Vec<Event>) {
        while let Some(d) = s.poll_timeout() {
            if d > until || s.is_done() {
                break;
            }
            s.handle_timeout(d);
            while s.poll_transmit().is_some() {}
            events.extend(std::iter::from_fn(|| s.poll_event()));
        }
    }

    fn input(s: &mut Scanner, at: Timestamp, data: &[u8], events: &mut Vec<Event>) {
        run_until(s, Timestamp(at.0 - 1), events);
        s.handle_input(at, data);
        run_until(s, at, events);
    }

    /// A server that sends nothing until the capability probe (at 8.5 s: 4 s negotiation,
    /// 0.5 s settle, 2 s banner, 2 s after the return).
    fn at_capability_probe() -> (Scanner, Vec<Event>, Timestamp) {
        let mut s = Scanner::new(ScanConfig::default(), Timestamp::ZERO);
        let mut events = Vec::new();
        run_until(&mut s, ms(8_500), &mut events);
        assert_eq!(s.phase(), Phase::CapabilityProbe);
        (s, events, ms(8_500))
    }

    fn refuse_all_but(keep: TelOpt) -> Vec<u8> {
        telopt::probe_options(false)
            .into_iter()
            .filter(|&o| o != keep)
            .flat_map(|o| [IAC, WONT, o.0])
            .collect()
    }

    fn ended(events: &[Event], phase: Phase) -> Timestamp {
        events
            .iter()
            .find(|e| matches!(&e.kind, EventKind::PhaseEnd { phase: p, .. } if *p == phase))
            .map(|e| e.at)
            .expect("phase ended")
    }

    #[test]
    fn a_retraction_before_the_tick_is_what_the_probe_sees() {
        let (mut s, mut events, start) = at_capability_probe();
        input(
            &mut s,
            start + Micros::from_millis(5),
            &refuse_all_but(TelOpt::STATUS),
            &mut events,
        );
        // Every option answered at 15 ms: telnetlib3 looks only at its 50 ms tick.
        input(
            &mut s,
            start + Micros::from_millis(15),
            &[IAC, WILL, TelOpt::STATUS.0],
            &mut events,
        );
        assert_eq!(
            s.phase(),
            Phase::CapabilityProbe,
            "no decision between ticks"
        );
        input(
            &mut s,
            start + Micros::from_millis(30),
            &[IAC, WONT, TelOpt::STATUS.0],
            &mut events,
        );
        run_until(&mut s, start + Micros::from_millis(60), &mut events);
        assert_eq!(
            ended(&events, Phase::CapabilityProbe),
            start + POLL_INTERVAL
        );
        let status = s.outcome.probe.iter().find(|(o, _)| *o == TelOpt::STATUS);
        assert_eq!(status.map(|p| p.1), Some(ProbeStatus::Wont));
    }

    #[test]
    fn an_unanswered_probe_ends_on_the_tick_at_its_deadline() {
        let (mut s, mut events, start) = at_capability_probe();
        run_until(&mut s, start + PROBE_TIMEOUT, &mut events);
        assert_eq!(
            ended(&events, Phase::CapabilityProbe),
            start + PROBE_TIMEOUT
        );
        // A driver that wakes late moves every later tick with it, as asyncio.sleep does.
        assert_eq!(
            s.poll_timeout(),
            Some(start + PROBE_TIMEOUT + POLL_INTERVAL)
        );
        let late = start + PROBE_TIMEOUT + POLL_INTERVAL + Micros::from_millis(7);
        s.handle_timeout(late);
        assert_eq!(s.poll_timeout(), Some(late + POLL_INTERVAL));
    }

    #[test]
    fn the_mssp_wait_ends_at_its_deadline_not_on_a_later_tick() {
        let mut p = Poll::until(ms(0), ms(120));
        assert_eq!(p.at(ms(0)), Tick::Check);
        p.sleep(ms(0));
        assert_eq!(p.at(ms(49)), Tick::Wait);
        p.sleep(ms(101));
        assert_eq!(p.next, ms(120), "the last sleep is cut to the deadline");
        assert_eq!(p.at(ms(120)), Tick::Expired);
        let mut q = Poll::probe(ms(0));
        q.sleep(ms(480));
        assert_eq!(q.next, ms(530), "a probe's last tick may pass its deadline");
    }
}
