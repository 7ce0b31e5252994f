//! The telnet client protocol: the IAC byte parser, option negotiation and sub-negotiations,
//! mirroring telnetlib3 5.0.1's `TelnetWriter` (client role, and server role during the
//! wrong-direction probe) and its MCCP2/MCCP3 handling.
//!
//! This is the "data received" half of the engine: it reacts to bytes at once, like
//! telnetlib3's protocol callbacks do. Deciding when phases begin and end is the scanner's
//! job (`crate::scan`), which reads the in-band bytes this module buffers.

use crate::codec;
use crate::config::ScanConfig;
use crate::event::{Dir, Event, EventKind};
use crate::mud::{self, MudData};
use crate::slc::{SlcError, SlcState};
use crate::telopt::{self, TelOpt, Verb, DO, DONT, IAC, SB, SE, WILL, WONT};
use crate::time::Timestamp;
use flate2::{Decompress, FlushDecompress, Status};
use std::collections::VecDeque;

/// Largest sub-negotiation payload kept (telnetlib3's `_MAX_SUBNEGOTIATION`, 1 MiB). A
/// longer one is discarded up to its `IAC SE` and recorded as a violation.
pub const MAX_SUBNEGOTIATION: usize = 1 << 20;

/// Largest number of decompressed MCCP2 bytes per session. A compression bomb stops here:
/// decompression is switched off and a violation recorded.
pub const MAX_DECOMPRESSED: u64 = 64 << 20;

/// Largest in-band buffer kept for the scanner to read. Bytes beyond it are dropped and a
/// violation recorded (telnetlib3 would pause the socket; a sans-IO engine cannot).
pub const MAX_INBAND_BUFFER: usize = 4 << 20;

/// Largest amount of output queued for the driver to send.
pub const MAX_OUTPUT_QUEUE: usize = 4 << 20;

/// Largest number of timeline events queued; beyond it events are dropped and counted.
pub const MAX_EVENTS_QUEUED: usize = 100_000;

/// Deepest nesting of MCCP2 streams started inside decompressed data.
const MAX_MCCP2_NESTING: usize = 4;

/// The client writer's `default_linemode` (`LMODE_MODE_REMOTE | LMODE_MODE_LIT_ECHO`),
/// sent when a peer says WILL LINEMODE in the server role.
const LINEMODE_DEFAULT_MODE: u8 = 0x10;

/// Sub-negotiation verbs.
const IS: u8 = 0;
const SEND: u8 = 1;

/// A tri-state option table with Python dict semantics: a key can be absent, present with
/// `None`, or present with a bool, and iteration follows first insertion.
#[derive(Clone, Debug)]
pub struct OptTable {
    /// 0 absent, 1 None, 2 false, 3 true.
    state: [u8; 256],
    order: Vec<u8>,
}

impl Default for OptTable {
    fn default() -> Self {
        OptTable {
            state: [0; 256],
            order: Vec::new(),
        }
    }
}

impl OptTable {
    /// The value, `None` when absent or unset.
    pub fn get(&self, opt: TelOpt) -> Option<bool> {
        match self.state[opt.0 as usize] {
            2 => Some(false),
            3 => Some(true),
            _ => None,
        }
    }

    /// Whether the value is `true`.
    pub fn enabled(&self, opt: TelOpt) -> bool {
        self.state[opt.0 as usize] == 3
    }

    /// Whether the key is present (even with `None`).
    pub fn contains(&self, opt: TelOpt) -> bool {
        self.state[opt.0 as usize] != 0
    }

    /// Sets a value, keeping the key's first-insertion position.
    pub fn set(&mut self, opt: TelOpt, value: Option<bool>) {
        let slot = &mut self.state[opt.0 as usize];
        if *slot == 0 {
            self.order.push(opt.0);
        }
        *slot = match value {
            None => 1,
            Some(false) => 2,
            Some(true) => 3,
        };
    }

    /// Entries in insertion order.
    pub fn items(&self) -> impl Iterator<Item = (TelOpt, Option<bool>)> + '_ {
        self.order.iter().map(|&b| (TelOpt(b), self.get(TelOpt(b))))
    }
}

/// What a pending entry waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PendingKind {
    /// We sent DO.
    Do = 0,
    /// We sent DONT.
    Dont = 1,
    /// We sent WILL.
    Will = 2,
    /// We sent WONT.
    Wont = 3,
    /// We wait for a sub-negotiation.
    Sb = 4,
}

/// telnetlib3's `pending_option`: keyed by (command, option), with key presence.
#[derive(Clone, Debug)]
pub struct Pending {
    /// 0 absent, 2 false, 3 true (per kind, per option).
    state: [[u8; 256]; 5],
}

impl Default for Pending {
    fn default() -> Self {
        Pending {
            state: [[0; 256]; 5],
        }
    }
}

impl Pending {
    /// Whether the entry is `true`.
    pub fn enabled(&self, k: PendingKind, opt: TelOpt) -> bool {
        self.state[k as usize][opt.0 as usize] == 3
    }
    /// Whether the key is present.
    pub fn contains(&self, k: PendingKind, opt: TelOpt) -> bool {
        self.state[k as usize][opt.0 as usize] != 0
    }
    /// Sets an entry.
    pub fn set(&mut self, k: PendingKind, opt: TelOpt, v: bool) {
        self.state[k as usize][opt.0 as usize] = if v { 3 } else { 2 };
    }
    /// Removes an entry (`dict.pop`).
    pub fn remove(&mut self, k: PendingKind, opt: TelOpt) {
        self.state[k as usize][opt.0 as usize] = 0;
    }
    /// Whether any entry is `true` (the "negotiation complete" test).
    pub fn any(&self) -> bool {
        self.state.iter().any(|row| row.contains(&3))
    }
    /// The entries that are `true`, for the timeline.
    pub fn outstanding(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (k, name) in ["DO", "DONT", "WILL", "WONT", "SB"].iter().enumerate() {
            for (o, &v) in self.state[k].iter().enumerate() {
                if v == 3 {
                    out.push(format!("{name} {}", TelOpt(o as u8)));
                }
            }
        }
        out
    }
}

/// Where the parser is inside an IAC sequence (telnetlib3's `iac_received`/`cmd_received`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmd {
    /// Not inside a command.
    None,
    /// A DO/DONT/WILL/WONT/SB is in progress.
    Multi(u8),
    /// The previous byte finished a command (it is out of band).
    Finished,
}

/// Why handling a received command failed the way telnetlib3 raises: the command is
/// swallowed (no reply, no state change beyond what happened before the raise).
struct Swallowed(&'static str);

/// A MUD field's decoding raised what mud.py's `_decode_best_effort` does not catch.
const FIELD_RAISED: Swallowed = Swallowed("decoding a field raised (not UnicodeDecodeError)");

/// MCCP2 decompression state.
struct Inflate {
    z: Decompress,
    /// We already fell back from zlib-header auto-detection to raw deflate.
    raw: bool,
}

/// The protocol state of one connection.
pub struct Protocol {
    cfg: ScanConfig,
    /// What the client said it will do (answers to the server's DO/DONT).
    pub local: OptTable,
    /// What the server said it will do.
    pub remote: OptTable,
    /// Commands sent and awaiting a reply.
    pub pending: Pending,
    /// Options refused because they were requested in the wrong direction.
    pub directional_refusals: Vec<TelOpt>,
    /// During the wrong-direction probe the client interprets traffic as a server would.
    pub server_role: bool,
    /// During loop detection (`_in_loop_detection`) an `SB NAWS` from the server is not
    /// taken as its `WILL NAWS`.
    pub loop_detection: bool,
    /// The session encoding (`environ_encoding`).
    pub encoding: String,
    /// Whether `--encoding` was explicit.
    pub encoding_explicit: bool,
    /// What set the session encoding last: `default`, `flag` (`--encoding`), `CHARSET`,
    /// `prompt`, `UTF-8 menu` or `SyncTERM font` (display only).
    pub encoding_source: &'static str,
    /// The NEW_ENVIRON `LANG` value: `C` until a CHARSET offer is accepted.
    pub lang: String,
    /// The last NEW_ENVIRON SEND payload.
    pub environ_send_raw: Option<Vec<u8>>,
    /// Data from MUD protocols.
    pub mud: MudData,
    /// The connection is closing: nothing more is sent.
    pub closing: bool,
    /// In-band bytes received and not yet read by the scanner.
    pub inband: Vec<u8>,
    /// Set when a received chunk held at least one out-of-band byte.
    pub saw_command: bool,

    iac: bool,
    cmd: Cmd,
    sb: Vec<u8>,
    sb_overflow: bool,
    mccp2: Option<Inflate>,
    mccp2_activated: bool,
    mccp2_failed_at: Option<Timestamp>,
    decompressed: u64,
    /// MCCP3 is on: everything sent is wrapped in a zlib stream.
    mccp3: bool,
    mccp3_requested: bool,
    gmcp_hello_sent: bool,
    zmp_ident_sent: bool,
    /// telnetlib3's `_linemode` mask (initially 0, remote editing).
    linemode_mode: u8,
    /// LINEMODE SLC table, its aliased BSD defaults and the queued replies.
    slc: SlcState,
    forwardmask: Option<Vec<u8>>,
    inband_overflow: bool,

    now: Timestamp,
    out: Vec<u8>,
    out_overflow: bool,
    events: VecDeque<Event>,
    events_dropped: u64,
}

impl Protocol {
    /// A fresh connection with the given configuration.
    pub fn new(cfg: ScanConfig) -> Protocol {
        let encoding = cfg.encoding.clone();
        let explicit = cfg.encoding_explicit();
        Protocol {
            cfg,
            local: OptTable::default(),
            remote: OptTable::default(),
            pending: Pending::default(),
            directional_refusals: Vec::new(),
            server_role: false,
            loop_detection: false,
            encoding,
            encoding_explicit: explicit,
            encoding_source: if explicit { "flag" } else { "default" },
            lang: "C".into(),
            environ_send_raw: None,
            mud: MudData::default(),
            closing: false,
            inband: Vec::new(),
            saw_command: false,
            iac: false,
            cmd: Cmd::None,
            sb: Vec::new(),
            sb_overflow: false,
            mccp2: None,
            mccp2_activated: false,
            mccp2_failed_at: None,
            decompressed: 0,
            mccp3: false,
            mccp3_requested: false,
            gmcp_hello_sent: false,
            zmp_ident_sent: false,
            linemode_mode: 0,
            slc: SlcState::new(),
            forwardmask: None,
            inband_overflow: false,
            now: Timestamp::ZERO,
            out: Vec::new(),
            out_overflow: false,
            events: VecDeque::new(),
            events_dropped: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ScanConfig {
        &self.cfg
    }

    /// Sets the clock for the events and output that follow.
    pub fn set_now(&mut self, now: Timestamp) {
        self.now = now;
    }

    // ----- options sets -------------------------------------------------------------------

    fn always_will(&self, opt: TelOpt) -> bool {
        telopt::EXTENDED.contains(&opt) || self.cfg.always_will.contains(&opt)
    }
    fn always_do(&self, opt: TelOpt) -> bool {
        telopt::EXTENDED.contains(&opt) || self.cfg.always_do.contains(&opt)
    }
    fn passive_do(opt: TelOpt) -> bool {
        telopt::MUD_PROTOCOLS.contains(&opt)
    }
    fn client(&self) -> bool {
        !self.server_role
    }

    // ----- output -------------------------------------------------------------------------

    /// Queues an event.
    pub fn event(&mut self, kind: EventKind) {
        if self.events.len() >= MAX_EVENTS_QUEUED {
            self.events_dropped += 1;
            return;
        }
        // Consecutive in-band data at the same time is one event, so that the timeline
        // does not depend on how the bytes were split.
        if let EventKind::Data { dir, bytes } = &kind {
            if let Some(Event {
                at,
                kind: EventKind::Data { dir: d0, bytes: b0 },
            }) = self.events.back_mut()
            {
                if *at == self.now && d0 == dir {
                    b0.extend_from_slice(bytes);
                    return;
                }
            }
        }
        self.events.push_back(Event { at: self.now, kind });
    }

    /// Queues a violation.
    pub fn violation(&mut self, text: impl Into<String>) {
        self.event(EventKind::Violation { text: text.into() });
    }

    /// Queues a note.
    pub fn note(&mut self, text: impl Into<String>) {
        self.event(EventKind::Note { text: text.into() });
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        if self.events.is_empty() && self.events_dropped > 0 {
            let n = std::mem::take(&mut self.events_dropped);
            return Some(Event {
                at: self.now,
                kind: EventKind::Violation {
                    text: format!("{n} timeline events dropped (limit {MAX_EVENTS_QUEUED})"),
                },
            });
        }
        self.events.pop_front()
    }

    /// Bytes to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.out.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.out))
        }
    }

    /// Writes raw bytes to the server (through MCCP3 when active).
    fn send_raw(&mut self, bytes: &[u8]) {
        if self.closing {
            return;
        }
        if self.out.len() + bytes.len() > MAX_OUTPUT_QUEUE {
            if !self.out_overflow {
                self.out_overflow = true;
                self.violation(format!(
                    "output queue over {MAX_OUTPUT_QUEUE} bytes; further output dropped"
                ));
            }
            return;
        }
        if self.mccp3 {
            mccp3_stored_blocks(bytes, &mut self.out);
        } else {
            self.out.extend_from_slice(bytes);
        }
    }

    /// Sends a negotiation command without guards and logs it.
    fn send_command(&mut self, verb: Verb, opt: TelOpt) {
        if self.closing {
            return;
        }
        self.send_raw(&[IAC, verb.byte(), opt.0]);
        self.event(EventKind::Negotiation {
            dir: Dir::Sent,
            verb,
            opt,
        });
    }

    /// Sends `IAC SB opt payload IAC SE`, escaping IAC in the payload, and logs it.
    fn send_sb(&mut self, opt: TelOpt, payload: &[u8], escape: bool) {
        if self.closing {
            return;
        }
        let mut buf = Vec::with_capacity(payload.len() + 6);
        buf.extend_from_slice(&[IAC, SB, opt.0]);
        if escape {
            for &b in payload {
                buf.push(b);
                if b == IAC {
                    buf.push(IAC);
                }
            }
        } else {
            buf.extend_from_slice(payload);
        }
        buf.extend_from_slice(&[IAC, SE]);
        self.send_raw(&buf);
        let meaning = crate::describe::subnegotiation(opt, payload, Dir::Sent);
        self.event(EventKind::Subnegotiation {
            dir: Dir::Sent,
            opt,
            payload: payload.to_vec(),
            meaning,
        });
    }

    /// Writes in-band data (escaping IAC), as `writer.write`.
    pub fn send_data(&mut self, bytes: &[u8]) {
        if self.closing || bytes.is_empty() {
            return;
        }
        let mut buf = Vec::with_capacity(bytes.len() + 2);
        for &b in bytes {
            buf.push(b);
            if b == IAC {
                buf.push(IAC);
            }
        }
        self.send_raw(&buf);
        self.event(EventKind::Data {
            dir: Dir::Sent,
            bytes: bytes.to_vec(),
        });
    }

    /// Sends a raw negotiation command bypassing all guards (the wrong-direction probe).
    pub fn send_unguarded(&mut self, verb: Verb, opt: TelOpt) {
        self.send_command(verb, opt);
    }

    /// `writer.iac(cmd, opt)`: sends a negotiation command through telnetlib3's guards.
    /// Returns whether it was sent.
    pub fn iac(&mut self, verb: Verb, opt: TelOpt) -> bool {
        use PendingKind as P;
        if verb == Verb::Do
            && opt != TelOpt::TM
            && opt != TelOpt::LOGOUT
            && self.remote.enabled(opt)
        {
            self.pending.set(P::Do, opt, false);
            return false;
        }
        if matches!(verb, Verb::Do | Verb::Will) {
            let k = if verb == Verb::Do { P::Do } else { P::Will };
            if self.pending.enabled(k, opt) {
                return false;
            }
            self.pending.set(k, opt, true);
        }
        if verb == Verb::Will && opt != TelOpt::TM && self.local.enabled(opt) {
            self.pending.set(P::Will, opt, false);
            return false;
        }
        if verb == Verb::Dont && opt != TelOpt::LOGOUT {
            if self.remote.contains(opt) && !self.remote.enabled(opt) {
                return false;
            }
            self.remote.set(opt, Some(false));
        }
        if verb == Verb::Wont {
            self.local.set(opt, Some(false));
        }
        if self.closing {
            // telnetlib3 updates its state but `send_iac` writes nothing once closing.
            return true;
        }
        self.send_command(verb, opt);
        true
    }

    // ----- input --------------------------------------------------------------------------

    /// Feeds bytes received from the server (one `data_received` call).
    pub fn receive(&mut self, data: &[u8]) {
        self.saw_command = false;
        if self.mccp2_failed_at == Some(self.now) {
            // telnetlib3 drops the rest of the chunk whose decompression failed; iacscope
            // drops everything that arrived at that instant, so splitting does not matter.
            return;
        }
        self.receive_chunk(data, 0);
    }

    /// Called once all bytes of an instant were received: starts MCCP3 if the server asked
    /// for it. telnetlib3 starts its compressor after the chunk that asked; iacscope after
    /// the instant, so that how the bytes were split does not matter.
    pub fn end_of_instant(&mut self) {
        if self.mccp3_requested && !self.mccp3 {
            self.mccp3 = true;
            if !self.closing {
                self.out.extend_from_slice(&MCCP3_ZLIB_HEADER);
            }
            self.note("MCCP3: client to server compression started");
        }
    }

    fn receive_chunk(&mut self, data: &[u8], depth: usize) {
        if self.mccp2.is_some() {
            self.receive_compressed(data, depth);
        } else {
            self.parse(data, false, depth);
        }
    }

    fn receive_compressed(&mut self, data: &[u8], depth: usize) {
        let mut input = data;
        let mut out = Vec::with_capacity(data.len() * 4 + 64);
        loop {
            let Some(inf) = self.mccp2.as_mut() else {
                // Decompression was switched off; the rest is plain.
                self.parse(input, false, depth);
                return;
            };
            out.clear();
            out.reserve(16 * 1024);
            let before_in = inf.z.total_in();
            let res = inf.z.decompress_vec(input, &mut out, FlushDecompress::None);
            let used = (inf.z.total_in() - before_in) as usize;
            match res {
                Err(e) => {
                    if !inf.raw && inf.z.total_out() == 0 {
                        // telnetlib3 retries the chunk as raw deflate once.
                        self.note("MCCP2: zlib header not recognised, retrying as raw deflate");
                        self.mccp2 = Some(Inflate {
                            z: Decompress::new(false),
                            raw: true,
                        });
                        continue;
                    }
                    // What was inflated before the error is kept (telnetlib3 loses the whole
                    // chunk, which makes its result depend on how TCP split the bytes); the
                    // rest of what arrived at this instant is dropped.
                    let produced = std::mem::take(&mut out);
                    self.violation(format!(
                        "MCCP2 decompression error ({e}); decompression off, rest of the chunk dropped"
                    ));
                    self.mccp2 = None;
                    self.mccp2_failed_at = Some(self.now);
                    if !produced.is_empty() {
                        self.parse(&produced, true, depth);
                    }
                    return;
                }
                Ok(status) => {
                    input = &input[used..];
                    self.decompressed += out.len() as u64;
                    let produced = std::mem::take(&mut out);
                    if self.decompressed > MAX_DECOMPRESSED {
                        self.violation(format!(
                            "MCCP2 output over {MAX_DECOMPRESSED} bytes; decompression off"
                        ));
                        self.mccp2 = None;
                        return;
                    }
                    let ended = status == Status::StreamEnd;
                    if ended {
                        self.mccp2 = None;
                        self.note("MCCP2: compressed stream ended");
                    }
                    if !produced.is_empty() {
                        self.parse(&produced, true, depth);
                    }
                    out = produced;
                    if ended {
                        if !input.is_empty() {
                            self.receive_chunk(input, depth);
                        }
                        return;
                    }
                    if input.is_empty() && out.len() < out.capacity() {
                        return;
                    }
                    if used == 0 && out.is_empty() {
                        return;
                    }
                }
            }
        }
    }

    /// The byte loop of `_process_data_chunk`.
    fn parse(&mut self, data: &[u8], decompressed: bool, depth: usize) {
        let mut i = 0;
        let n = data.len();
        while i < n {
            if !self.is_oob() {
                let next = memchr_iac(&data[i..]).map_or(n, |p| i + p);
                if next > i {
                    self.push_inband(&data[i..next]);
                }
                i = next;
                if i >= n {
                    break;
                }
            }
            let b = data[i];
            let inband = self.feed_byte(b);
            if inband {
                self.push_inband(&[b]);
            } else {
                self.saw_command = true;
            }
            i += 1;
            if self.mccp2_activated {
                self.mccp2_activated = false;
                if depth >= MAX_MCCP2_NESTING {
                    self.violation("MCCP2 started inside MCCP2 too deeply; ignored");
                    continue;
                }
                let _ = decompressed;
                self.mccp2 = Some(Inflate {
                    z: Decompress::new(true),
                    raw: false,
                });
                self.note("MCCP2: server to client compression started");
                if i < n {
                    self.receive_compressed(&data[i..], depth + 1);
                }
                return;
            }
        }
    }

    fn push_inband(&mut self, bytes: &[u8]) {
        if self.inband.len() + bytes.len() > MAX_INBAND_BUFFER {
            if !self.inband_overflow {
                self.inband_overflow = true;
                self.violation(format!(
                    "more than {MAX_INBAND_BUFFER} unread bytes buffered; the rest is dropped"
                ));
            }
            return;
        }
        self.inband.extend_from_slice(bytes);
        self.event(EventKind::Data {
            dir: Dir::Recv,
            bytes: bytes.to_vec(),
        });
    }

    fn is_oob(&self) -> bool {
        self.iac || self.cmd != Cmd::None
    }

    /// `feed_byte`: returns whether the byte is in band.
    fn feed_byte(&mut self, byte: u8) -> bool {
        if !matches!(self.cmd, Cmd::Multi(_)) {
            self.cmd = Cmd::None;
        }
        if byte == IAC {
            self.iac = !self.iac;
            if !self.iac && self.cmd == Cmd::Multi(SB) {
                self.sb_push(IAC);
            }
        } else if self.iac && self.cmd == Cmd::None {
            if matches!(byte, DO | DONT | WILL | WONT | SB) {
                self.cmd = Cmd::Multi(byte);
            } else {
                if !telopt::is_two_byte_command(byte) {
                    // "not a legal 2-byte cmd, treating as data"
                    self.iac = false;
                    self.cmd = Cmd::None;
                    self.violation(format!(
                        "IAC followed by 0x{byte:02x} is not a command; kept as data"
                    ));
                    return true;
                }
                self.cmd = Cmd::Finished;
                self.event(EventKind::Command {
                    dir: Dir::Recv,
                    cmd: byte,
                });
            }
            self.iac = false;
        } else if self.iac && self.cmd == Cmd::Multi(SB) {
            if byte != SE {
                let opt = self.sb.first().map(|&o| TelOpt(o).to_string());
                self.violation(format!(
                    "sub-negotiation SB {} ({} bytes) interrupted by IAC {}",
                    opt.as_deref().unwrap_or("?"),
                    self.sb.len(),
                    telopt::command_name(byte)
                ));
                self.sb.clear();
                // telnetlib3 takes the interrupting byte as the new command.
                self.cmd = if matches!(byte, DO | DONT | WILL | WONT | SB) {
                    Cmd::Multi(byte)
                } else {
                    Cmd::Finished
                };
            } else {
                self.cmd = Cmd::Finished;
                if self.sb.is_empty() {
                    if self.sb_overflow {
                        self.violation(format!(
                            "sub-negotiation over {MAX_SUBNEGOTIATION} bytes discarded"
                        ));
                    } else {
                        self.violation("empty sub-negotiation (IAC SB IAC SE) discarded");
                    }
                } else {
                    let buf = std::mem::take(&mut self.sb);
                    self.handle_subnegotiation(&buf);
                }
            }
            self.iac = false;
            self.sb_overflow = false;
        } else if self.cmd == Cmd::Multi(SB) {
            self.sb_push(byte);
        } else if let Cmd::Multi(verb) = self.cmd {
            let opt = TelOpt(byte);
            self.iac = false;
            self.cmd = Cmd::Finished;
            self.handle_negotiation(verb, opt);
        } else {
            return true;
        }
        !self.is_oob()
    }

    fn sb_push(&mut self, byte: u8) {
        if self.sb_overflow || self.sb.len() >= MAX_SUBNEGOTIATION {
            if !self.sb_overflow {
                let opt = self.sb.first().map(|&o| TelOpt(o).to_string());
                self.violation(format!(
                    "sub-negotiation SB {} exceeds {MAX_SUBNEGOTIATION} bytes; discarding until IAC SE",
                    opt.as_deref().unwrap_or("?")
                ));
            }
            self.sb.clear();
            self.sb_overflow = true;
        } else {
            self.sb.push(byte);
        }
    }

    fn handle_negotiation(&mut self, verb_byte: u8, opt: TelOpt) {
        use PendingKind as P;
        let Some(verb) = Verb::from_byte(verb_byte) else {
            return;
        };
        self.event(EventKind::Negotiation {
            dir: Dir::Recv,
            verb,
            opt,
        });
        match verb {
            Verb::Do => {
                let r = self.handle_do(opt);
                match r {
                    Ok(v) => self.local.set(opt, Some(v)),
                    Err(Swallowed(why)) => self.note(format!("DO {opt} ignored: {why}")),
                }
                if self.pending.enabled(P::Will, opt) {
                    self.pending.set(P::Will, opt, false);
                }
            }
            Verb::Dont => {
                self.pending.set(P::Will, opt, false);
                self.local.set(opt, Some(false));
            }
            Verb::Will => {
                if let Err(Swallowed(why)) = self.handle_will(opt) {
                    self.note(format!("WILL {opt} ignored: {why}"));
                }
                if self.pending.enabled(P::Do, opt) {
                    self.pending.set(P::Do, opt, false);
                }
                if self.pending.enabled(P::Dont, opt) {
                    self.pending.set(P::Dont, opt, false);
                }
            }
            Verb::Wont => {
                if opt == TelOpt::TM && !self.pending.enabled(P::Do, TelOpt::TM) {
                    self.note("WONT TM without DO TM ignored");
                } else if opt == TelOpt::LOGOUT {
                    // A callback only; no state.
                } else {
                    self.remote.set(opt, Some(false));
                }
                self.pending.set(P::Do, opt, false);
            }
        }
    }

    /// `handle_do`: returns the new local state (telnetlib3 stores the return value).
    fn handle_do(&mut self, opt: TelOpt) -> Result<bool, Swallowed> {
        use PendingKind as P;
        if self.cfg.always_wont.contains(&opt) {
            if !self.local.enabled(opt) {
                self.iac(Verb::Wont, opt);
            }
            return Ok(false);
        }
        const SERVER_REFUSES: [TelOpt; 8] = [
            TelOpt::LINEMODE,
            TelOpt::TTYPE,
            TelOpt::NAWS,
            TelOpt::NEW_ENVIRON,
            TelOpt::XDISPLOC,
            TelOpt::LFLOW,
            TelOpt::TSPEED,
            TelOpt::SNDLOC,
        ];
        // Plus MUD_PROTOCOLS (checked below).
        const DO_SUPPORTED: [TelOpt; 14] = [
            TelOpt::ECHO,
            TelOpt::LINEMODE,
            TelOpt::BINARY,
            TelOpt::SGA,
            TelOpt::LFLOW,
            TelOpt::EOR,
            TelOpt::TTYPE,
            TelOpt::NEW_ENVIRON,
            TelOpt::XDISPLOC,
            TelOpt::TSPEED,
            TelOpt::CHARSET,
            TelOpt::NAWS,
            TelOpt::STATUS,
            TelOpt::MCCP2,
        ];
        if opt == TelOpt::ECHO && self.client() {
            // Quirk (spec 2.3-2): WONT ECHO is sent, but the returned True records
            // local[ECHO] = true.
            self.iac(Verb::Wont, TelOpt::ECHO);
        } else if self.server_role && SERVER_REFUSES.contains(&opt) {
            self.iac(Verb::Wont, opt);
            self.add_directional_refusal(opt);
            // telnetlib3 falls through to `return True` here, so local[opt] ends up true.
        } else if self.client() && opt == TelOpt::LOGOUT {
            return Err(Swallowed("cannot receive DO LOGOUT on the client end"));
        } else if opt == TelOpt::TM {
            // DO TM is always answered WILL TM, even when repeated.
            self.iac(Verb::Will, TelOpt::TM);
        } else if opt == TelOpt::LOGOUT {
            // Server role: a callback only.
        } else if DO_SUPPORTED.contains(&opt) || telopt::MUD_PROTOCOLS.contains(&opt) {
            if self.client() && telopt::MUD_PROTOCOLS.contains(&opt) {
                if self.always_will(opt) {
                    if !self.local.enabled(opt) {
                        self.iac(Verb::Will, opt);
                    }
                    return Ok(true);
                }
                if !self.local.enabled(opt) {
                    self.iac(Verb::Wont, opt);
                }
                return Ok(false);
            }
            if opt == TelOpt::MCCP2 && self.cfg.tls {
                self.iac(Verb::Wont, opt);
                return Ok(false);
            }
            if !self.local.enabled(opt) {
                self.iac(Verb::Will, opt);
            }
            if opt == TelOpt::NAWS {
                self.send_naws();
            } else if opt == TelOpt::STATUS {
                self.send_status()?;
            } else if [
                TelOpt::LFLOW,
                TelOpt::TTYPE,
                TelOpt::NEW_ENVIRON,
                TelOpt::XDISPLOC,
                TelOpt::TSPEED,
                TelOpt::LINEMODE,
                TelOpt::MXP,
            ]
            .contains(&opt)
            {
                self.pending.set(P::Sb, opt, true);
                if opt == TelOpt::LINEMODE && self.client() {
                    self.local.set(TelOpt::LINEMODE, Some(true));
                    // _slc_start / _slc_add(NUL, SLC_DEFAULT) / _slc_end: (0, SLC_DEFAULT, 0)
                    // as spec §2.3 says, but after any replies still queued, and only the
                    // header when the queue is full (the tool wins, NOTES.md #10).
                    let body = self.slc.request_defaults();
                    self.send_slc(body)?;
                }
            }
        } else if self.always_will(opt) {
            if !self.local.enabled(opt) {
                self.iac(Verb::Will, opt);
            }
        } else {
            if !self.local.enabled(opt) {
                self.iac(Verb::Wont, opt);
            }
            return Ok(false);
        }
        Ok(true)
    }

    /// `handle_will`.
    fn handle_will(&mut self, opt: TelOpt) -> Result<(), Swallowed> {
        use PendingKind as P;
        if self.cfg.always_dont.contains(&opt) {
            self.iac(Verb::Dont, opt);
            self.remote.set(opt, Some(false));
            return Ok(());
        }
        // Plus MUD_PROTOCOLS (checked below).
        const WILL_SUPPORTED: [TelOpt; 10] = [
            TelOpt::BINARY,
            TelOpt::SGA,
            TelOpt::ECHO,
            TelOpt::NAWS,
            TelOpt::LINEMODE,
            TelOpt::EOR,
            TelOpt::SNDLOC,
            TelOpt::COM_PORT,
            TelOpt::MCCP2,
            TelOpt::MCCP3,
        ];
        if WILL_SUPPORTED.contains(&opt) || telopt::MUD_PROTOCOLS.contains(&opt) {
            if opt == TelOpt::ECHO && self.server_role {
                return Err(Swallowed("cannot receive WILL ECHO on the server end"));
            }
            if [TelOpt::NAWS, TelOpt::LINEMODE, TelOpt::SNDLOC].contains(&opt) && self.client() {
                self.iac(Verb::Dont, opt);
                self.add_directional_refusal(opt);
                return Ok(());
            }
            if self.client() && telopt::MUD_PROTOCOLS.contains(&opt) {
                if self.always_do(opt) || Self::passive_do(opt) {
                    if !self.remote.enabled(opt) {
                        self.iac(Verb::Do, opt);
                        self.remote.set(opt, Some(true));
                    }
                    self.will_callbacks(opt);
                    return Ok(());
                }
                self.iac(Verb::Dont, opt);
                return Ok(());
            }
            if (opt == TelOpt::MCCP2 || opt == TelOpt::MCCP3) && self.cfg.tls {
                self.iac(Verb::Dont, opt);
                return Ok(());
            }
            if !self.remote.enabled(opt) {
                self.iac(Verb::Do, opt);
                self.remote.set(opt, Some(true));
            }
            if [TelOpt::NAWS, TelOpt::LINEMODE, TelOpt::SNDLOC, TelOpt::MXP].contains(&opt) {
                self.pending.set(P::Sb, opt, true);
                if opt == TelOpt::LINEMODE {
                    // send_linemode(default_linemode): the client writer's default_linemode
                    // is REMOTE | LIT_ECHO (0x10), which becomes the current mode.
                    self.linemode_mode = LINEMODE_DEFAULT_MODE;
                    self.send_sb(TelOpt::LINEMODE, &[1, LINEMODE_DEFAULT_MODE], false);
                }
            }
            if opt == TelOpt::COM_PORT && self.client() && self.remote.enabled(TelOpt::COM_PORT) {
                self.send_sb(TelOpt::COM_PORT, &[0], true);
            }
            if opt == TelOpt::MCCP3 && self.client() {
                self.send_sb(TelOpt::MCCP3, &[], false);
                self.mccp3_requested = true;
            }
        } else if opt == TelOpt::TM {
            if !self.pending.enabled(P::Do, TelOpt::TM) {
                return Err(Swallowed("WILL TM without a DO TM"));
            }
            self.remote.set(opt, Some(true));
        } else if opt == TelOpt::LOGOUT {
            if self.client() {
                return Err(Swallowed("cannot receive WILL LOGOUT on the client end"));
            }
        } else if opt == TelOpt::STATUS {
            self.remote.set(opt, Some(true));
            self.request_status();
        } else if [
            TelOpt::XDISPLOC,
            TelOpt::TTYPE,
            TelOpt::TSPEED,
            TelOpt::NEW_ENVIRON,
            TelOpt::LFLOW,
            TelOpt::CHARSET,
        ]
        .contains(&opt)
        {
            if self.client() && opt != TelOpt::CHARSET {
                self.iac(Verb::Dont, opt);
                self.add_directional_refusal(opt);
                return Ok(());
            }
            if opt == TelOpt::CHARSET && self.client() {
                self.iac(Verb::Do, TelOpt::CHARSET);
            }
            self.remote.set(opt, Some(true));
            if opt == TelOpt::CHARSET && self.server_role && !self.local.enabled(opt) {
                self.local.set(opt, Some(true));
                self.send_command(Verb::Will, TelOpt::CHARSET);
            }
            if !(opt == TelOpt::CHARSET && self.client()) {
                self.server_request(opt);
            }
        } else if self.always_do(opt) {
            if !self.remote.enabled(opt) {
                self.iac(Verb::Do, opt);
                self.remote.set(opt, Some(true));
            }
        } else {
            self.iac(Verb::Dont, opt);
            if self.pending.enabled(P::Do, opt) {
                self.pending.set(P::Do, opt, false);
            }
        }
        self.will_callbacks(opt);
        Ok(())
    }

    /// The client's WILL callbacks: GMCP `Core.Hello` and ZMP `zmp.ident`, once each.
    fn will_callbacks(&mut self, opt: TelOpt) {
        if opt == TelOpt::GMCP && self.remote.enabled(opt) && !self.gmcp_hello_sent {
            self.gmcp_hello_sent = true;
            let hello = format!(
                "Core.Hello {{\"client\": \"telnetlib3\", \"version\": \"{}\"}}",
                crate::TELNETLIB3_VERSION
            );
            self.send_sb(TelOpt::GMCP, hello.as_bytes(), true);
            let set = "Core.Supports.Set [\"char 1\", \"char.vitals 1\", \"char.items 1\", \
                       \"room 1\", \"room.info 1\", \"comm 1\", \"comm.channel 1\", \"group 1\"]";
            self.send_sb(TelOpt::GMCP, set.as_bytes(), true);
        }
        if opt == TelOpt::ZMP && self.remote.enabled(opt) && !self.zmp_ident_sent {
            self.zmp_ident_sent = true;
            let mut p = b"zmp.ident\0telnetlib3\0".to_vec();
            p.extend_from_slice(crate::TELNETLIB3_VERSION.as_bytes());
            p.push(0);
            self.send_sb(TelOpt::ZMP, &p, true);
        }
    }

    /// Server-role requests after WILL XDISPLOC/TTYPE/TSPEED/NEW_ENVIRON/LFLOW/CHARSET.
    fn server_request(&mut self, opt: TelOpt) {
        use PendingKind as P;
        match opt {
            TelOpt::TTYPE | TelOpt::XDISPLOC | TelOpt::TSPEED
                if self.remote.enabled(opt) && !self.pending.enabled(P::Sb, opt) =>
            {
                self.pending.set(P::Sb, opt, true);
                self.send_sb(opt, &[SEND], true);
            }
            TelOpt::NEW_ENVIRON
                if self.remote.enabled(opt) && !self.pending.enabled(P::Sb, opt) =>
            {
                self.pending.set(P::Sb, opt, true);
                self.send_sb(opt, &[SEND, 0, 3], true);
            }
            TelOpt::CHARSET if !self.pending.enabled(P::Sb, opt) => {
                self.pending.set(P::Sb, opt, true);
                self.send_sb(opt, b"\x01;UTF-8", true);
            }
            TelOpt::LFLOW => {
                // send_lineflow_mode: LFLOW OFF/ON per xon-any; telnetlib3 sends RESTART-ANY.
                self.send_sb(opt, &[2], true);
            }
            _ => {}
        }
    }

    fn add_directional_refusal(&mut self, opt: TelOpt) {
        if !self.directional_refusals.contains(&opt) {
            self.directional_refusals.push(opt);
        }
    }

    fn send_naws(&mut self) {
        // Window 80 columns × 25 rows; NAWS sends (cols, rows) big-endian.
        self.send_sb(TelOpt::NAWS, &[0, 80, 0, 25], true);
    }

    /// `_send_status`: raises unless we offered or perform STATUS.
    fn send_status(&mut self) -> Result<(), Swallowed> {
        use PendingKind as P;
        if !(self.pending.enabled(P::Will, TelOpt::STATUS) || self.local.enabled(TelOpt::STATUS)) {
            return Err(Swallowed("STATUS IS may only be sent after WILL STATUS"));
        }
        let mut p = vec![IS];
        let local: Vec<_> = self.local.items().collect();
        for (o, st) in local {
            if o == TelOpt::STATUS {
                continue;
            }
            p.push(if st == Some(true) { WILL } else { WONT });
            p.push(o.0);
        }
        let remote: Vec<_> = self.remote.items().collect();
        for (o, st) in remote {
            if o == TelOpt::STATUS {
                continue;
            }
            if st == Some(true) || self.pending.contains(P::Do, o) {
                p.extend_from_slice(&[DO, o.0]);
            } else if st != Some(true) || self.pending.contains(P::Dont, o) {
                p.extend_from_slice(&[DONT, o.0]);
            }
        }
        // telnetlib3 writes the report with send_iac: option bytes are not escaped.
        self.send_sb(TelOpt::STATUS, &p, false);
        if self.pending.enabled(P::Will, TelOpt::STATUS) {
            self.pending.set(P::Will, TelOpt::STATUS, false);
        }
        Ok(())
    }

    fn request_status(&mut self) {
        use PendingKind as P;
        if self.remote.enabled(TelOpt::STATUS) && !self.pending.enabled(P::Sb, TelOpt::STATUS) {
            self.send_sb(TelOpt::STATUS, &[SEND], false);
            self.pending.set(P::Sb, TelOpt::STATUS, true);
        }
    }

    // ----- sub-negotiations ---------------------------------------------------------------

    fn handle_subnegotiation(&mut self, buf: &[u8]) {
        use PendingKind as P;
        let opt = TelOpt(buf[0]);
        let payload = &buf[1..];
        let meaning = crate::describe::subnegotiation(opt, payload, Dir::Recv);
        self.event(EventKind::Subnegotiation {
            dir: Dir::Recv,
            opt,
            payload: payload.to_vec(),
            meaning,
        });
        if buf[0] == 0 {
            self.violation("sub-negotiation for option 0 (BINARY) dropped");
            return;
        }
        const EMPTY_OK: [TelOpt; 7] = [
            TelOpt::MXP,
            TelOpt::MSP,
            TelOpt::ZMP,
            TelOpt::AARDWOLF,
            TelOpt::ATCP,
            TelOpt::MCCP2,
            TelOpt::MCCP3,
        ];
        if payload.is_empty() && !EMPTY_OK.contains(&opt) {
            self.violation(format!("empty SB {opt} dropped"));
            return;
        }
        if self.pending.enabled(P::Sb, opt) {
            self.pending.set(P::Sb, opt, false);
        }
        let result = match opt {
            TelOpt::TTYPE => self.sb_ttype(payload),
            TelOpt::TSPEED => self.sb_tspeed(payload),
            TelOpt::XDISPLOC => self.sb_xdisploc(payload),
            TelOpt::NEW_ENVIRON => self.sb_environ(payload),
            TelOpt::CHARSET => self.sb_charset(payload),
            TelOpt::LINEMODE => self.sb_linemode(payload),
            TelOpt::STATUS => self.sb_status(payload),
            TelOpt::COM_PORT => {
                mud::comport(&mut self.mud, payload);
                Ok(())
            }
            TelOpt::MSSP => {
                let enc = if self.encoding.is_empty() {
                    "utf-8".to_owned()
                } else {
                    self.encoding.clone()
                };
                match mud::try_mssp_decode(payload, &enc) {
                    Ok(mssp) => {
                        self.mud.mssp = Some(mssp);
                        Ok(())
                    }
                    Err(_) => Err(FIELD_RAISED),
                }
            }
            TelOpt::ZMP => self.sb_zmp(payload),
            TelOpt::ATCP => {
                let enc = self.mud_encoding();
                mud::atcp(&mut self.mud, payload, &enc).map_err(|_| FIELD_RAISED)
            }
            TelOpt::AARDWOLF => {
                mud::aardwolf(&mut self.mud, payload);
                Ok(())
            }
            TelOpt::MXP => {
                self.mud.mxp.push(payload.to_vec());
                Ok(())
            }
            TelOpt::NAWS => self.sb_naws(payload),
            TelOpt::GMCP | TelOpt::MSDP | TelOpt::MSP | TelOpt::LFLOW => Ok(()),
            TelOpt::SNDLOC => Ok(()),
            TelOpt::MCCP2 => {
                self.mccp2_activated = true;
                Ok(())
            }
            TelOpt::MCCP3 => {
                // telnetlib3 switches its own compression on when the server sends this.
                self.mccp3_requested = true;
                Ok(())
            }
            _ => Err(Swallowed("sub-negotiation for an unhandled option")),
        };
        if let Err(Swallowed(why)) = result {
            self.violation(format!("SB {opt} dropped: {why}"));
        }
    }

    fn mud_encoding(&self) -> String {
        if self.encoding.is_empty() {
            "utf-8".into()
        } else {
            self.encoding.clone()
        }
    }

    /// telnetlib3's `_handle_sb_naws`: a window size from the server counts as its
    /// `WILL NAWS` (an echo service sends ours back), except during loop detection; a size
    /// that is not two 16-bit numbers then raises.
    fn sb_naws(&mut self, p: &[u8]) -> Result<(), Swallowed> {
        if !self.remote.enabled(TelOpt::NAWS) && !self.loop_detection {
            self.note("SB NAWS without WILL NAWS: NAWS taken as enabled, as telnetlib3 does");
            self.remote.set(TelOpt::NAWS, Some(true));
        }
        if p.len() != 4 {
            return Err(Swallowed("a window size is 4 bytes"));
        }
        Ok(())
    }

    fn sb_ttype(&mut self, p: &[u8]) -> Result<(), Swallowed> {
        use PendingKind as P;
        match p.first() {
            Some(&SEND) => {
                let tt = self.cfg.ttype.clone();
                if !tt.is_ascii() {
                    return Err(Swallowed("terminal type is not ASCII"));
                }
                let mut r = vec![IS];
                r.extend_from_slice(tt.as_bytes());
                // send_iac: no escaping.
                self.send_sb(TelOpt::TTYPE, &r, false);
                if self.pending.enabled(P::Will, TelOpt::TTYPE) {
                    self.pending.set(P::Will, TelOpt::TTYPE, false);
                }
                Ok(())
            }
            Some(&IS) => Ok(()),
            _ => Ok(()),
        }
    }

    fn sb_tspeed(&mut self, p: &[u8]) -> Result<(), Swallowed> {
        use PendingKind as P;
        if p.first() == Some(&SEND) {
            let mut r = vec![IS];
            r.extend_from_slice(b"38400,38400");
            self.send_sb(TelOpt::TSPEED, &r, false);
            if self.pending.enabled(P::Will, TelOpt::TSPEED) {
                self.pending.set(P::Will, TelOpt::TSPEED, false);
            }
        }
        Ok(())
    }

    fn sb_xdisploc(&mut self, p: &[u8]) -> Result<(), Swallowed> {
        use PendingKind as P;
        match p.first() {
            Some(&SEND) => {
                self.send_sb(TelOpt::XDISPLOC, &[IS], false);
                if self.pending.enabled(P::Will, TelOpt::XDISPLOC) {
                    self.pending.set(P::Will, TelOpt::XDISPLOC, false);
                }
                Ok(())
            }
            Some(&IS) if !p[1..].is_ascii() => Err(Swallowed("XDISPLOC IS is not ASCII")),
            _ => Ok(()),
        }
    }

    fn sb_environ(&mut self, p: &[u8]) -> Result<(), Swallowed> {
        use PendingKind as P;
        let Some(&kind) = p.first() else {
            return Ok(());
        };
        let raw = &p[1..];
        if kind == SEND {
            self.environ_send_raw = Some(raw.to_vec());
        }
        if codec::lookup(&self.encoding).is_none() {
            return Err(Swallowed("the session encoding is not a known codec"));
        }
        // `_decode_env_buf` decodes every name and value first.
        let Some(keys) = mud::environ_keys(raw, &self.encoding) else {
            return Err(Swallowed("decoding a name or value raised"));
        };
        if kind == IS {
            self.pending.set(P::Sb, TelOpt::NEW_ENVIRON, false);
            return Ok(());
        }
        if kind != SEND {
            return Ok(());
        }
        let reply = self.environ_reply(&keys);
        let mut r = vec![IS];
        for (k, v) in &reply {
            r.push(0); // VAR
            r.extend(mud::environ_escape(&encode_replace(&self.encoding, k)));
            r.push(1); // VALUE
            r.extend(mud::environ_escape(&encode_replace(&self.encoding, v)));
        }
        self.send_sb(TelOpt::NEW_ENVIRON, &r, false);
        if self.pending.enabled(P::Will, TelOpt::TTYPE) {
            // Sic: telnetlib3 clears the TTYPE flag here.
            self.pending.set(P::Will, TelOpt::TTYPE, false);
        }
        Ok(())
    }

    /// The client's `send_env`: allowed keys get values, others an empty string; a SEND
    /// with no names gets every allowed key.
    fn environ_reply(&self, keys: &[String]) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = vec![
            ("LANG".into(), self.lang.clone()),
            ("TERM".into(), self.cfg.ttype.clone()),
            ("LINES".into(), "25".into()),
            ("COLUMNS".into(), "80".into()),
            ("COLORTERM".into(), self.cfg.colorterm.clone()),
        ];
        for (k, v) in &self.cfg.send_env {
            match env.iter_mut().find(|(k0, _)| k0 == k) {
                Some(slot) => slot.1 = v.clone(),
                None => env.push((k.clone(), v.clone())),
            }
        }
        if keys.is_empty() {
            return env;
        }
        keys.iter()
            .map(|k| {
                let v = env
                    .iter()
                    .find(|(k0, _)| k0 == k)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                (k.clone(), v)
            })
            .collect()
    }

    fn sb_charset(&mut self, p: &[u8]) -> Result<(), Swallowed> {
        const REQUEST: u8 = 1;
        const ACCEPTED: u8 = 2;
        const REJECTED: u8 = 3;
        let Some(&kind) = p.first() else {
            return Err(Swallowed("CHARSET without a command"));
        };
        match kind {
            REQUEST => {
                let Some(&sep) = p.get(1) else {
                    return Err(Swallowed("CHARSET REQUEST without a separator"));
                };
                let rest = &p[2..];
                if !rest.is_ascii() {
                    return Err(Swallowed("CHARSET REQUEST names are not ASCII"));
                }
                let offers: Vec<&str> = rest
                    .split(|&b| b == sep)
                    .map(|s| core::str::from_utf8(s).unwrap_or(""))
                    .collect();
                // No acceptable offer: telnetlib3 5.0.1 still answers ACCEPTED, with an empty
                // name, and the session encoding becomes "" (spec 2.4).
                let selected = codec::accept_charset_offer(&offers)
                    .map(|i| offers[i].to_owned())
                    .unwrap_or_default();
                if let Some(lang) = codec::charset_lang(&selected) {
                    self.lang = lang;
                }
                let mut r = vec![ACCEPTED];
                r.extend_from_slice(selected.as_bytes());
                self.send_sb(TelOpt::CHARSET, &r, false);
                self.note(format!(
                    "session encoding {:?} -> {:?} (CHARSET ACCEPTED)",
                    self.encoding, selected
                ));
                self.encoding = selected;
                self.encoding_source = "CHARSET";
                Ok(())
            }
            ACCEPTED => {
                if !p[1..].is_ascii() {
                    return Err(Swallowed("CHARSET ACCEPTED name is not ASCII"));
                }
                let name = String::from_utf8_lossy(&p[1..]).into_owned();
                self.note(format!(
                    "session encoding {:?} -> {name:?} (server ACCEPTED)",
                    self.encoding
                ));
                self.encoding = name;
                self.encoding_source = "CHARSET";
                Ok(())
            }
            REJECTED => Ok(()),
            4..=7 => Err(Swallowed("translation tables are not supported")),
            _ => Err(Swallowed("illegal CHARSET command")),
        }
    }

    /// Sends `IAC SB LINEMODE SLC <body> IAC SE` (`_slc_start` … `_slc_end`). When building
    /// the body raised in telnetlib3 (after `_slc_start` wrote the header), only the header
    /// goes out and the failure is noted; the caller then swallows the command.
    fn send_slc(&mut self, body: Result<Vec<u8>, SlcError>) -> Result<(), Swallowed> {
        const LMODE_SLC: u8 = 3;
        for n in self.slc.take_notes() {
            self.note(n);
        }
        match body {
            Ok(body) => {
                let mut payload = Vec::with_capacity(body.len() + 1);
                payload.push(LMODE_SLC);
                payload.extend_from_slice(&body);
                self.send_sb(TelOpt::LINEMODE, &payload, true);
                Ok(())
            }
            Err(e) => {
                // telnetlib3 wrote `IAC SB LINEMODE SLC` and then raised: no body, no IAC SE.
                self.send_raw(&[IAC, SB, TelOpt::LINEMODE.0, LMODE_SLC]);
                self.note(format!(
                    "{e}; sent IAC SB LINEMODE SLC without body or IAC SE, as telnetlib3 does"
                ));
                Err(Swallowed("SLC reply buffer full"))
            }
        }
    }

    fn sb_linemode(&mut self, p: &[u8]) -> Result<(), Swallowed> {
        const MODE: u8 = 1;
        const SLC: u8 = 3;
        const ACK: u8 = 4;
        match p.first() {
            Some(&MODE) => {
                let Some(&m) = p.get(1) else {
                    return Err(Swallowed("LINEMODE MODE without a mask"));
                };
                let current = self.linemode_mode;
                if m & ACK == 0 {
                    if current | ACK == m | ACK {
                        return Ok(());
                    }
                    if !(self.local.enabled(TelOpt::LINEMODE)
                        || self.remote.enabled(TelOpt::LINEMODE))
                    {
                        self.note("LINEMODE MODE ignored: LINEMODE not negotiated");
                        return Ok(());
                    }
                    let suggest = m | ACK;
                    self.linemode_mode = suggest;
                    self.send_sb(TelOpt::LINEMODE, &[MODE, suggest], false);
                } else if self.client() {
                    if current | ACK == m | ACK {
                        self.linemode_mode = m;
                    } else {
                        self.note("LINEMODE MODE ACK does not match the current mode; ignored");
                    }
                } else {
                    // Server role: any acknowledged mode is taken, then the SLC table is
                    // sent once (`_slc_sent`).
                    self.linemode_mode = m;
                    if !self.slc.table_sent {
                        let body = self.slc.send_table();
                        self.send_slc(body)?;
                        self.slc.table_sent = true;
                    }
                }
                Ok(())
            }
            Some(&SLC) => {
                // _handle_sb_linemode_slc: RFC 1184 processing against telnetlib3's table;
                // only changed entries are answered (see crate::slc).
                // Spec §3 says "only changed entries"; telnetlib3 5.0.1 also answers
                // out-of-range functions with (func, NOSUPPORT, 0xff) and NOSUPPORT with
                // value 0xff, answers changed values as "defaults" (its slctab aliases
                // BSD_SLC_TAB), and an unchanged request flushes replies left queued by an
                // earlier failure. The tool wins (tests/oracle/NOTES.md #10).
                match self.slc.receive(&p[1..], self.server_role) {
                    Ok(reply) => {
                        if let Some(body) = reply {
                            self.send_slc(Ok(body))?;
                        } else {
                            for n in self.slc.take_notes() {
                                self.note(n);
                            }
                        }
                        if self.server_role {
                            self.request_forwardmask();
                        }
                    }
                    Err(e) => {
                        for n in self.slc.take_notes() {
                            self.note(n);
                        }
                        self.note(format!("LINEMODE SLC stopped: {e}"));
                    }
                }
                Ok(())
            }
            Some(&cmd @ (DO | DONT | WILL | WONT)) => {
                const FORWARDMASK: u8 = 2;
                if p.get(1) != Some(&FORWARDMASK) {
                    return Err(Swallowed("LINEMODE DO/DONT/WILL/WONT without FORWARDMASK"));
                }
                let mask = &p[2..];
                if self.server_role && matches!(cmd, DO | DONT) {
                    return Ok(());
                }
                if self.client()
                    && (matches!(cmd, WILL | WONT)
                        || (cmd == DONT && !mask.is_empty())
                        || (cmd == DO && mask.is_empty()))
                {
                    return Ok(());
                }
                // telnetlib3 stores the state under the 3-byte key SB LINEMODE FORWARDMASK,
                // which the record names "0xfa"; its `bool(cmd is DO)` compares identities
                // and is always False in practice, so the value is False either way.
                let key = TelOpt(SB);
                if matches!(cmd, WILL | WONT) {
                    self.remote.set(key, Some(false));
                } else {
                    self.local.set(key, Some(false));
                    if cmd == DO {
                        self.forwardmask = Some(mask.to_vec());
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// `request_forwardmask()` (server role, after an SLC sub-negotiation): `IAC SB
    /// LINEMODE DO FORWARDMASK <mask> IAC SE`, the mask written without IAC doubling, only
    /// when the peer said WILL LINEMODE.
    fn request_forwardmask(&mut self) {
        const FORWARDMASK: u8 = 2;
        if !self.remote.enabled(TelOpt::LINEMODE) {
            return;
        }
        let mask = SlcState::forwardmask(self.local.enabled(TelOpt::BINARY));
        let mut payload = Vec::with_capacity(mask.len() + 2);
        payload.extend_from_slice(&[DO, FORWARDMASK]);
        payload.extend_from_slice(&mask);
        self.send_sb(TelOpt::LINEMODE, &payload, false);
    }

    fn sb_status(&mut self, p: &[u8]) -> Result<(), Swallowed> {
        match p.first() {
            Some(&SEND) => self.send_status(),
            _ => Ok(()),
        }
    }

    fn sb_zmp(&mut self, p: &[u8]) -> Result<(), Swallowed> {
        let enc = self.mud_encoding();
        let parts = mud::zmp_decode(p, &enc).map_err(|_| FIELD_RAISED)?;
        let Some(cmd) = parts.first().cloned() else {
            return Ok(());
        };
        let cmd_s = cmd.to_string_lossy();
        if cmd_s == "zmp.check" || cmd_s == "zmp.send-support" {
            let mut r = b"zmp.no-support\0".to_vec();
            if let Some(arg) = parts.get(1) {
                r.extend_from_slice(arg.to_string_lossy().as_bytes());
                r.push(0);
            }
            self.send_sb(TelOpt::ZMP, &r, true);
        }
        self.mud.zmp.insert(cmd, parts[1..].to_vec());
        Ok(())
    }
}

/// `str.encode(encoding, "replace")` for the NEW_ENVIRON reply. The values are ASCII in
/// practice (terminal names, numbers, locale names); UTF-8 sessions keep other characters,
/// every other codec gets `?` for them.
// FIXME(iacscope): single-byte codecs could encode their own non-ASCII characters.
fn encode_replace(encoding: &str, s: &str) -> Vec<u8> {
    if matches!(codec::lookup(encoding), Some("utf-8")) {
        return s.as_bytes().to_vec();
    }
    s.chars()
        .map(|c| if c.is_ascii() { c as u8 } else { b'?' })
        .collect()
}

/// The zlib header of a 4 KiB-window stream at level 9 (`48 C7`), what telnetlib3's
/// `compressobj(9, DEFLATED, 12, 5)` announces. A server inflating with a 12-bit window
/// rejects the usual 32 KiB header, so iacscope announces the same window.
const MCCP3_ZLIB_HEADER: [u8; 2] = [0x48, 0xC7];

/// MCCP3 output: each write becomes deflate *stored* blocks, byte-aligned like telnetlib3's
/// sync-flushed writes. Stored blocks never refer back, so any window size inflates them;
/// the client's traffic is a few hundred bytes, so compression would gain nothing.
fn mccp3_stored_blocks(bytes: &[u8], out: &mut Vec<u8>) {
    for piece in bytes.chunks(0xFFFF) {
        let len = piece.len() as u16;
        // BFINAL = 0, BTYPE = 00 (stored), padded to the byte boundary.
        out.push(0);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(piece);
    }
}

/// Position of the first IAC byte.
fn memchr_iac(hay: &[u8]) -> Option<usize> {
    memchr::memchr(IAC, hay)
}

#[cfg(test)]
mod tests {
    //! Byte-exact LINEMODE/SLC replies; every expectation is what telnetlib3 5.0.1's client
    //! `TelnetWriter` wrote for the same chunks (fed through `_process_data_chunk`).
    use super::*;

    /// Bytes from hex digits (spaces ignored).
    fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
        digits
            .chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap_or("0"), 16).unwrap_or(0))
            .collect()
    }

    /// Feeds each chunk and returns what was sent after each one.
    fn run(chunks: &[&str]) -> Vec<Vec<u8>> {
        run_as(false, chunks)
    }

    /// As [`run`], in the server role (telnetlib3's `_server = True` during the
    /// wrong-direction probe) when `server` is set.
    fn run_as(server: bool, chunks: &[&str]) -> Vec<Vec<u8>> {
        let mut p = Protocol::new(ScanConfig::default());
        p.server_role = server;
        chunks
            .iter()
            .map(|c| {
                p.receive(&hex(c));
                p.end_of_instant();
                p.poll_transmit().unwrap_or_default()
            })
            .collect()
    }

    #[test]
    fn slc_levels_flags_iac_doubling_and_out_of_range() {
        let out = run(&[
            "fffd22",
            "fffa2203 010300 02011b 040000 0a0300 0b8218 068205 130201 280201 086205 fff0",
        ]);
        assert_eq!(out[0], hex("fffb22 fffa2203000300fff0"));
        assert_eq!(
            out[1],
            hex("fffa2203 02811b 0480ffff 0a027f 138201 2800ffff 08e205 fff0")
        );
    }

    #[test]
    fn slc_default_request_answers_the_aliased_defaults() {
        let out = run(&[
            "fffd22",
            "fffa2203 080205 010305 fff0",
            "fffa2203 000300 fff0",
        ]);
        assert_eq!(out[1], hex("fffa2203 088205 010000 fff0"));
        assert_eq!(
            out[2],
            hex(
                "fffa2203 020300036203 04220f050214060300 07621c080205 09421a0a027f0b0215 \
                 0c02170d0212 0e02160f0211100213 fff0"
            )
        );
    }

    #[test]
    fn slc_failures_keep_queued_replies_for_the_next_reply() {
        let out = run(&[
            "fffd22",
            "fffa2203 000300 fff0",
            "fffa2203 080206 140201 fff0",
            "fffa2203 036203 fff0",
            "fffa2203 0402 fff0",
            "fffa2203 000100 fff0",
        ]);
        assert!(out[2].is_empty());
        assert_eq!(out[3], hex("fffa2203 088206 fff0"));
        assert!(out[4].is_empty());
        assert!(out[5].is_empty());
    }

    #[test]
    fn slc_buffer_full_sends_a_bare_header_on_the_next_request() {
        let many = "630201".repeat(61);
        let out = run(&[
            "fffd22",
            &format!("fffa2203{many}fff0"),
            "fffd22",
            "fffa2203fff0",
        ]);
        assert!(out[1].is_empty());
        assert_eq!(out[2], hex("fffa2203"));
        let mut full = hex("fffa2203");
        for _ in 0..crate::slc::MAX_QUEUED_TRIPLETS {
            full.extend_from_slice(&hex("6300ffff"));
        }
        full.extend_from_slice(&hex("fff0"));
        assert_eq!(out[3], full);
    }

    #[test]
    fn linemode_mode_zero_is_the_initial_mode() {
        // telnetlib3's _linemode starts at 0: MODE 0 is not acknowledged, MODE 1 is.
        let out = run(&["fffd22", "fffa220100fff0", "fffa220101fff0"]);
        assert!(out[1].is_empty());
        assert_eq!(out[2], hex("fffa220105fff0"));
    }

    #[test]
    fn server_role_linemode_mode_slc_table_and_forwardmask() {
        let out = run_as(
            true,
            &[
                "fffb22",
                "fffa2203 04021c 0a0300 fff0",
                "fffa220114fff0",
                "fffa220114fff0",
                "fffa2203fff0",
            ],
        );
        assert_eq!(out[0], hex("fffd22 fffa220110fff0"));
        let forwardmask = format!("fffa22fd02{}fff0", "00".repeat(16));
        assert_eq!(
            out[1],
            hex(&format!("fffa2203 04821c 0a027f fff0 {forwardmask}"))
        );
        assert_eq!(
            out[2],
            hex(
                "fffa2203 010300020300036203 04021c050214060300 07621c080204 09421a0a027f0b0215 \
                 0c02170d0212 0e02160f0211100213 fff0"
            )
        );
        assert!(out[3].is_empty());
        assert_eq!(out[4], hex(&forwardmask));
    }
}
