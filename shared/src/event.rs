//! Timeline events: what the engine saw, sent and decided, with times, for the page and CLI.
//!
//! Events are a display stream; the record (`crate::record`) is the contract. Formatting an
//! event as a line of text lives here so that the CLI and the web app say the same thing.

use crate::telopt::{command_name, TelOpt, Verb};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Which way bytes went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Dir {
    /// Server to client (received).
    Recv,
    /// Client to server (sent).
    Sent,
}

impl Dir {
    /// An arrow for text output: `<-` received, `->` sent.
    pub fn arrow(self) -> &'static str {
        match self {
            Dir::Recv => "<-",
            Dir::Sent => "->",
        }
    }
}

/// The scan's phases, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Phase {
    /// Waiting for the option negotiation to settle (at most 4 s).
    Negotiating,
    /// Reading the banner until the server goes quiet.
    Banner,
    /// Answering prompts and reading what follows.
    Prompt,
    /// Asking the server about each option (DO).
    CapabilityProbe,
    /// Sending wrong-direction requests (DO NAWS, DO TTYPE, WILL ECHO).
    WrongDirectionProbe,
    /// Re-asking agreed options to find negotiation loops.
    LoopDetection,
    /// Waiting for MSSP data the server promised.
    MsspWait,
    /// The record is built.
    Done,
}

impl Phase {
    /// A short label.
    pub fn label(self) -> &'static str {
        match self {
            Phase::Negotiating => "negotiating",
            Phase::Banner => "banner",
            Phase::Prompt => "prompt",
            Phase::CapabilityProbe => "capability probe",
            Phase::WrongDirectionProbe => "wrong-direction probe",
            Phase::LoopDetection => "loop detection",
            Phase::MsspWait => "MSSP wait",
            Phase::Done => "done",
        }
    }
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum EventKind {
    /// `IAC WILL/WONT/DO/DONT opt`.
    Negotiation {
        /// Direction.
        dir: Dir,
        /// Verb.
        verb: Verb,
        /// Option.
        opt: TelOpt,
    },
    /// A two-byte command such as `IAC NOP` or `IAC GA`.
    Command {
        /// Direction.
        dir: Dir,
        /// The command byte.
        cmd: u8,
    },
    /// A complete sub-negotiation `IAC SB opt … IAC SE`.
    Subnegotiation {
        /// Direction.
        dir: Dir,
        /// Option.
        opt: TelOpt,
        /// The payload after the option byte (IAC unescaped).
        payload: Vec<u8>,
        /// Its decoded meaning, e.g. `TTYPE IS "VT100"` or `NAWS 80x25`.
        meaning: String,
    },
    /// In-band bytes (after IAC removal and decompression) in either direction.
    Data {
        /// Direction.
        dir: Dir,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// A phase began.
    PhaseStart {
        /// The phase.
        phase: Phase,
    },
    /// A phase ended, with a sentence about how.
    PhaseEnd {
        /// The phase.
        phase: Phase,
        /// How it ended, e.g. `negotiation complete after 0.12s`.
        outcome: String,
    },
    /// One option's probe result.
    ProbeResult {
        /// Which probe.
        phase: Phase,
        /// Option.
        opt: TelOpt,
        /// `WILL`, `WONT`, `timeout`, `wrong-accept`, `correct-refuse`, `looped`…
        outcome: String,
    },
    /// Something the engine noticed: the session encoding changed, MCCP started, etc.
    Note {
        /// The sentence.
        text: String,
    },
    /// A protocol violation or a limit reached; never fatal.
    Violation {
        /// The sentence.
        text: String,
    },
    /// The server closed the connection.
    Closed,
}

/// A timeline entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When, since the connect.
    pub at: Timestamp,
    /// What.
    pub kind: EventKind,
}

impl Event {
    /// One line of text, e.g. `  0.012 <- IAC DO TTYPE`.
    pub fn to_line(&self) -> String {
        let t = format!("{:>8.3}", self.at.as_secs_f64());
        match &self.kind {
            EventKind::Negotiation { dir, verb, opt } => {
                format!("{t} {} IAC {verb} {opt}", dir.arrow())
            }
            EventKind::Command { dir, cmd } => {
                format!("{t} {} IAC {}", dir.arrow(), command_name(*cmd))
            }
            EventKind::Subnegotiation { dir, meaning, .. } => {
                format!("{t} {} SB {meaning}", dir.arrow())
            }
            EventKind::Data { dir, bytes } => {
                format!(
                    "{t} {} {} bytes {}",
                    dir.arrow(),
                    bytes.len(),
                    preview(bytes)
                )
            }
            EventKind::PhaseStart { phase } => format!("{t} == {}", phase.label()),
            EventKind::PhaseEnd { phase, outcome } => {
                format!("{t} == {} ended: {outcome}", phase.label())
            }
            EventKind::ProbeResult {
                phase,
                opt,
                outcome,
            } => format!("{t}    {} {opt}: {outcome}", phase.label()),
            EventKind::Note { text } => format!("{t}    {text}"),
            EventKind::Violation { text } => format!("{t} !! {text}"),
            EventKind::Closed => format!("{t} <- connection closed by server"),
        }
    }
}

/// A short printable preview of bytes: `"Ready.\r\n"` style, cut at 60 characters.
pub fn preview(bytes: &[u8]) -> String {
    const MAX: usize = 60;
    let mut s = String::from("\"");
    for &b in bytes.iter().take(MAX) {
        match b {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s.push('"');
    if bytes.len() > MAX {
        s.push('…');
    }
    s
}

/// Appends `e` to `events`, merging it into the last event when both are in-band data in the
/// same direction at the same time. How received bytes were split into reads then does not
/// show in the timeline.
pub fn push_coalesced(events: &mut Vec<Event>, e: Event) {
    if let (
        Some(Event {
            at,
            kind: EventKind::Data { dir, bytes },
        }),
        EventKind::Data { dir: d2, bytes: b2 },
    ) = (events.last_mut(), &e.kind)
    {
        if *at == e.at && dir == d2 {
            bytes.extend_from_slice(b2);
            return;
        }
    }
    events.push(e);
}
