//! LINEMODE Special Line Characters (RFC 1184) exactly as telnetlib3 5.0.1 processes them:
//! its `slctab`, the module-level BSD default table it aliases, the reply buffer and the
//! (always empty) forward mask (`telnetlib3/slc.py` and `TelnetWriter._slc_*` in `stream_writer.py`).
//!
//! telnetlib3 quirks reproduced on purpose, because the bytes it sends depend on them:
//! - `slctab` entries for functions 1–18 are the *same objects* as `BSD_SLC_TAB`'s, so an
//!   SLC change mutates the "default" table too: a later request for the defaults (function
//!   0, level `SLC_DEFAULT`) or an `SLC_DEFAULT` level answers with the changed values.
//! - A request for the defaults replaces `slctab` with a copy of `BSD_SLC_TAB`, which lacks
//!   functions 19–30: a later triplet for one of them raises `KeyError` (nothing is sent,
//!   and replies queued by earlier triplets of that sub-negotiation stay queued).
//! - `SLC_DEFAULT` for a function outside the BSD table (19–30) whose level is not
//!   `SLC_DEFAULT` raises `AttributeError` (`None.mask`).
//! - `SLC_NOSUPPORT` is answered with value 0xff (`_POSIX_VDISABLE`), IAC-doubled on the wire.
//! - The reply buffer holds at most [`MAX_QUEUED_TRIPLETS`]; one more raises "SLC: buffer
//!   full!" and the buffer is kept (it is only emptied when a reply is sent).
//!
//! Nothing here reaches the JSON record: telnetlib3-fingerprint's client record has no SLC
//! data (only its server-side fingerprint of *clients* collects `slctab`).

use std::fmt;

/// Number of SLC functions (`NSLC`): 1 (`SLC_SYNCH`) to 30 (`SLC_EEOL`).
pub const NSLC: u8 = 30;

/// Largest number of triplets waiting to be sent: telnetlib3 refuses to queue once its
/// buffer holds `NSLC * 6` bytes objects, three per triplet.
pub const MAX_QUEUED_TRIPLETS: usize = NSLC as usize * 6 / 3;

/// Highest function number in `BSD_SLC_TAB` (`SLC_FORW2`); all of 1..=18 are in it.
const BSD_FUNCS: u8 = 18;

/// Level bits of a mask.
pub const SLC_LEVELBITS: u8 = 0x03;
/// Level: the function is not supported.
pub const SLC_NOSUPPORT: u8 = 0;
/// Level: the value cannot be changed.
pub const SLC_CANTCHANGE: u8 = 1;
/// Level: the value may be changed.
pub const SLC_VARIABLE: u8 = 2;
/// Level: use the default value.
pub const SLC_DEFAULT: u8 = 3;
/// Flag: flush output.
pub const SLC_FLUSHOUT: u8 = 0x20;
/// Flag: flush input.
pub const SLC_FLUSHIN: u8 = 0x40;
/// Flag: acknowledgement.
pub const SLC_ACK: u8 = 0x80;

/// `_POSIX_VDISABLE`: the value of an unsupported function.
const VDISABLE: u8 = 0xff;

/// One SLC definition: a mask (level and flags) and a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slc {
    /// Level bits and flags.
    pub mask: u8,
    /// The character.
    pub val: u8,
}

impl Slc {
    const NOSUPPORT: Slc = Slc {
        mask: SLC_NOSUPPORT,
        val: VDISABLE,
    };

    /// The support level (`mask & SLC_LEVELBITS`).
    pub fn level(self) -> u8 {
        self.mask & SLC_LEVELBITS
    }

    fn ack(self) -> bool {
        self.mask & SLC_ACK != 0
    }
}

/// `BSD_SLC_TAB` in its insertion order (function, mask, value).
const BSD_SLC_TAB: [(u8, u8, u8); BSD_FUNCS as usize] = [
    (17, SLC_NOSUPPORT, VDISABLE),                        // FORW1
    (18, SLC_NOSUPPORT, VDISABLE),                        // FORW2
    (8, SLC_VARIABLE, 0x04),                              // EOF ^D
    (10, SLC_VARIABLE, 0x7f),                             // EC
    (11, SLC_VARIABLE, 0x15),                             // EL ^U
    (3, SLC_VARIABLE | SLC_FLUSHIN | SLC_FLUSHOUT, 0x03), // IP ^C
    (7, SLC_VARIABLE | SLC_FLUSHIN | SLC_FLUSHOUT, 0x1c), // ABORT ^\
    (15, SLC_VARIABLE, 0x11),                             // XON ^Q
    (16, SLC_VARIABLE, 0x13),                             // XOFF ^S
    (12, SLC_VARIABLE, 0x17),                             // EW ^W
    (13, SLC_VARIABLE, 0x12),                             // RP ^R
    (14, SLC_VARIABLE, 0x16),                             // LNEXT ^V
    (4, SLC_VARIABLE | SLC_FLUSHOUT, 0x0f),               // AO ^O
    (9, SLC_VARIABLE | SLC_FLUSHIN, 0x1a),                // SUSP ^Z
    (5, SLC_VARIABLE, 0x14),                              // AYT ^T
    (2, SLC_DEFAULT, 0),                                  // BRK
    (1, SLC_DEFAULT, 0),                                  // SYNCH
    (6, SLC_DEFAULT, 0),                                  // EOR
];

/// Why processing stopped where telnetlib3 raises.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlcError {
    /// The payload is not a whole number of triplets (`ValueError`); nothing was processed.
    PartialTriplet(usize),
    /// The reply buffer already holds [`MAX_QUEUED_TRIPLETS`] (`ValueError`).
    BufferFull,
    /// The function is missing from `slctab` after a reset to the defaults (`KeyError`).
    MissingFunction(u8),
    /// `SLC_DEFAULT` for a function without a BSD default (`AttributeError`).
    NoDefault(u8),
}

impl fmt::Display for SlcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SlcError::PartialTriplet(n) => {
                write!(
                    f,
                    "SLC payload of {n} bytes is not a whole number of triplets"
                )
            }
            SlcError::BufferFull => write!(
                f,
                "SLC reply buffer full ({MAX_QUEUED_TRIPLETS} triplets); queued replies kept"
            ),
            SlcError::MissingFunction(func) => write!(
                f,
                "SLC function {func} is not in the table since the reset to the BSD defaults"
            ),
            SlcError::NoDefault(func) => {
                write!(
                    f,
                    "SLC_DEFAULT for function {func}, which has no BSD default"
                )
            }
        }
    }
}

/// Where a `slctab` entry lives.
#[derive(Clone, Copy, Debug)]
enum Entry {
    /// The module-level default object for this function (aliased).
    Shared,
    /// An object of its own.
    Own(Slc),
}

/// telnetlib3's SLC state for one connection.
#[derive(Clone, Debug)]
pub struct SlcState {
    /// `BSD_SLC_TAB`, indexed by function (index 0 unused). Mutable: see the module docs.
    defaults: [Slc; BSD_FUNCS as usize + 1],
    /// `slctab` in dict order (at most [`NSLC`] entries).
    table: Vec<(u8, Entry)>,
    /// `_slc_buffer`: triplets waiting for the next `_slc_end`.
    queued: Vec<[u8; 3]>,
    /// `_slc_sent` (server role): the table was sent after a MODE ACK.
    pub table_sent: bool,
    /// Log lines telnetlib3 emits without raising, for the timeline.
    notes: Vec<String>,
}

impl Default for SlcState {
    fn default() -> Self {
        SlcState::new()
    }
}

impl SlcState {
    /// The state of a new `TelnetWriter`: `generate_slctab(BSD_SLC_TAB)`.
    pub fn new() -> SlcState {
        let mut defaults = [Slc::NOSUPPORT; BSD_FUNCS as usize + 1];
        for (func, mask, val) in BSD_SLC_TAB {
            defaults[func as usize] = Slc { mask, val };
        }
        let table = (1..=NSLC)
            .map(|f| {
                let e = if f <= BSD_FUNCS {
                    Entry::Shared
                } else {
                    Entry::Own(Slc::NOSUPPORT)
                };
                (f, e)
            })
            .collect();
        SlcState {
            defaults,
            table,
            queued: Vec::new(),
            table_sent: false,
            notes: Vec::new(),
        }
    }

    /// Takes the notes gathered since the last call.
    pub fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    /// The current `slctab` entry for `func`, if the table holds it.
    pub fn get(&self, func: u8) -> Option<Slc> {
        let (_, e) = self.table.iter().find(|(f, _)| *f == func)?;
        Some(match e {
            Entry::Shared => self.defaults[func as usize],
            Entry::Own(s) => *s,
        })
    }

    /// The (possibly mutated) BSD default for `func`, `None` outside 1..=18.
    fn default_of(&self, func: u8) -> Option<Slc> {
        (1..=BSD_FUNCS)
            .contains(&func)
            .then(|| self.defaults[func as usize])
    }

    /// Changes the entry for `func` in place (the shared default when aliased).
    fn update(&mut self, func: u8, f: impl FnOnce(&mut Slc)) {
        let Some(slot) = self.table.iter_mut().find(|(k, _)| *k == func) else {
            return;
        };
        match &mut slot.1 {
            Entry::Shared => f(&mut self.defaults[func as usize]),
            Entry::Own(s) => f(s),
        }
    }

    /// `slctab[func] = def` (a new object; the dict keeps the key's position).
    fn replace(&mut self, func: u8, def: Slc) {
        if let Some(slot) = self.table.iter_mut().find(|(k, _)| *k == func) {
            slot.1 = Entry::Own(def);
        }
    }

    /// `_slc_add`.
    fn add(&mut self, func: u8, def: Slc) -> Result<(), SlcError> {
        if self.queued.len() >= MAX_QUEUED_TRIPLETS {
            return Err(SlcError::BufferFull);
        }
        self.queued.push([func, def.mask, def.val]);
        Ok(())
    }

    /// `_slc_add(func)`: queues the current entry.
    fn add_current(&mut self, func: u8) -> Result<(), SlcError> {
        match self.get(func) {
            Some(def) => self.add(func, def),
            None => Err(SlcError::MissingFunction(func)),
        }
    }

    /// Empties the buffer (`_slc_end`): the unescaped triplet bytes.
    fn take_queued(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.queued).concat()
    }

    /// Whether replies are queued.
    pub fn has_queued(&self) -> bool {
        !self.queued.is_empty()
    }

    /// The client's request for the server's defaults sent after `WILL LINEMODE`:
    /// `_slc_add(NUL, SLC(SLC_DEFAULT, NUL))` then `_slc_end`. Returns the body (with any
    /// replies still queued before it).
    pub fn request_defaults(&mut self) -> Result<Vec<u8>, SlcError> {
        self.add(
            0,
            Slc {
                mask: SLC_DEFAULT,
                val: 0,
            },
        )?;
        Ok(self.take_queued())
    }

    /// `_slc_start` / `_slc_send()` / `_slc_end` (the server's table after a MODE ACK):
    /// the body, possibly empty.
    pub fn send_table(&mut self) -> Result<Vec<u8>, SlcError> {
        self.queue_current()?;
        Ok(self.take_queued())
    }

    /// `_slc_send()` with the current table, in function order.
    fn queue_current(&mut self) -> Result<(), SlcError> {
        for func in 1..=NSLC {
            match self.get(func) {
                Some(def) if def.level() != SLC_NOSUPPORT => self.add(func, def)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// `_slc_send(default_slc_tab)`.
    fn queue_defaults(&mut self) -> Result<(), SlcError> {
        for func in 1..=BSD_FUNCS {
            let def = self.defaults[func as usize];
            if def.level() != SLC_NOSUPPORT {
                self.add(func, def)?;
            }
        }
        Ok(())
    }

    /// `_handle_sb_linemode_slc`: processes the triplets after `SB LINEMODE SLC`. `Ok(Some)`
    /// is the reply body to send (unescaped); `Ok(None)` sends nothing. On `Err` nothing is
    /// sent, but every triplet before the failing one took effect (and its reply stays
    /// queued), as in telnetlib3.
    pub fn receive(&mut self, data: &[u8], server: bool) -> Result<Option<Vec<u8>>, SlcError> {
        if !data.len().is_multiple_of(3) {
            return Err(SlcError::PartialTriplet(data.len()));
        }
        for t in data.chunks_exact(3) {
            let his = Slc {
                mask: t[1],
                val: t[2],
            };
            self.process(t[0], his, server)?;
        }
        Ok(self.has_queued().then(|| self.take_queued()))
    }

    /// `_slc_process`.
    fn process(&mut self, func: u8, his: Slc, server: bool) -> Result<(), SlcError> {
        if func > NSLC {
            self.notes.push(format!(
                "SLC function {func} out of range; answered NOSUPPORT"
            ));
            return self.add(func, Slc::NOSUPPORT);
        }
        if func == 0 {
            match his.level() {
                SLC_DEFAULT => {
                    // Reset to (a copy of) the BSD table, which lacks functions 19..=30.
                    self.table = BSD_SLC_TAB
                        .iter()
                        .map(|&(f, _, _)| (f, Entry::Shared))
                        .collect();
                    self.queue_defaults()?;
                    if server {
                        self.table_sent = true;
                    }
                }
                SLC_VARIABLE => self.queue_current()?,
                level => self.notes.push(format!(
                    "SLC request (function 0) with level {level} ignored"
                )),
            }
            return Ok(());
        }
        let Some(mine) = self.get(func) else {
            return Err(SlcError::MissingFunction(func));
        };
        if his.level() == mine.level() && (his.val == mine.val || his.ack()) {
            return Ok(());
        }
        if his.ack() {
            return Ok(());
        }
        self.change(func, his, mine)
    }

    /// `_slc_change`.
    fn change(&mut self, func: u8, his: Slc, mine: Slc) -> Result<(), SlcError> {
        let mylevel = mine.level();
        match his.level() {
            SLC_NOSUPPORT => {
                self.replace(
                    func,
                    Slc {
                        mask: SLC_NOSUPPORT | SLC_ACK,
                        val: VDISABLE,
                    },
                );
                self.add_current(func)
            }
            SLC_DEFAULT => {
                if mylevel == SLC_DEFAULT {
                    self.update(func, |s| s.mask = SLC_NOSUPPORT);
                } else {
                    let Some(d) = self.default_of(func) else {
                        return Err(SlcError::NoDefault(func));
                    };
                    self.update(func, |s| s.mask = d.mask);
                }
                let val = self.default_of(func).map_or(VDISABLE, |d| d.val);
                self.update(func, |s| s.val = val);
                self.add_current(func)
            }
            hislevel => {
                if mine.val != 0 || mylevel == SLC_DEFAULT {
                    // Accept their value (or, with no value of ours at level DEFAULT,
                    // store and acknowledge whatever was sent).
                    self.update(func, |s| *s = his);
                    self.add(
                        func,
                        Slc {
                            mask: his.mask | SLC_ACK,
                            val: his.val,
                        },
                    )
                } else if hislevel == SLC_CANTCHANGE && mylevel == SLC_CANTCHANGE {
                    self.update(func, |s| s.mask = SLC_NOSUPPORT);
                    self.add_current(func)
                } else {
                    self.update(func, |s| s.mask = mylevel);
                    if mylevel == SLC_CANTCHANGE {
                        let val = self.default_of(func).map_or(VDISABLE, |d| d.val);
                        self.update(func, |s| s.val = val);
                    }
                    self.add_current(func)
                }
            }
        }
    }

    /// `generate_forwardmask(binary_mode, slctab)`: 32 bytes in binary mode, else 16, and
    /// always all zero: it sets a character's bit only when `snoop(char, slctab, {})`
    /// returns a callback, and with no callbacks given that is never the case.
    pub fn forwardmask(binary: bool) -> Vec<u8> {
        vec![0u8; if binary { 32 } else { 16 }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> SlcState {
        SlcState::new()
    }

    /// Bytes from hex digits (spaces ignored).
    fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
        digits
            .chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap_or("0"), 16).unwrap_or(0))
            .collect()
    }

    #[test]
    fn unchanged_entries_get_no_reply() {
        let mut s = state();
        let r = s.receive(&[3, 0x62, 0x03, 10, 0x02, 0x7f, 11, 0x02, 0x15], false);
        assert_eq!(r, Ok(None));
    }

    #[test]
    fn changed_value_is_accepted_and_acked_with_its_flags() {
        let mut s = state();
        assert_eq!(
            s.receive(&[4, 0x02, 0x1c], false),
            Ok(Some(vec![4, 0x82, 0x1c]))
        );
        assert_eq!(
            s.get(4),
            Some(Slc {
                mask: 0x02,
                val: 0x1c
            })
        );
        // Same again: no reply.
        assert_eq!(s.receive(&[4, 0x02, 0x1c], false), Ok(None));
    }

    #[test]
    fn levels_nosupport_default_cantchange_and_ack() {
        let mut s = state();
        let reply = s
            .receive(
                &[
                    1, 0x03, 0x00, // SYNCH DEFAULT 0: same level and value -> nothing
                    2, 0x01, 0x1b, // BRK CANTCHANGE, ours DEFAULT without value -> ack theirs
                    4, 0x00, 0x00, // AO NOSUPPORT -> (AO, ACK, 0xff)
                    10, 0x03, 0x00, // EC DEFAULT, ours VARIABLE -> default mask and value
                    11, 0x82, 0x18, // EL same level with ACK -> nothing
                    6, 0x82, 0x05, // EOR other level with ACK -> nothing
                    19, 0x02, 0x01, // MCL VARIABLE, ours NOSUPPORT 0xff -> accepted
                    40, 0x02, 0x01, // out of range -> (40, NOSUPPORT, 0xff)
                    8, 0x62, 0x05, // EOF with flush bits -> accepted with the flush bits
                ],
                false,
            )
            .unwrap()
            .unwrap();
        assert_eq!(
            reply,
            vec![
                2, 0x81, 0x1b, 4, 0x80, 0xff, 10, 0x02, 0x7f, 19, 0x82, 0x01, 40, 0x00, 0xff, 8,
                0xe2, 0x05
            ]
        );
        assert_eq!(s.take_notes().len(), 1);
    }

    #[test]
    fn changes_alias_the_default_table() {
        let mut s = state();
        assert_eq!(
            s.receive(&[8, 0x02, 0x05, 1, 0x03, 0x05], false),
            Ok(Some(vec![8, 0x82, 0x05, 1, 0x00, 0x00]))
        );
        // Function 0, DEFAULT: the "defaults" now hold EOF = 0x05 and SYNCH unsupported
        // (bytes from telnetlib3 5.0.1 fed the same input).
        assert_eq!(
            s.receive(&[0, 0x03, 0x00], false).unwrap().unwrap(),
            hex("020300036203 04220f050214060300 07621c080205 09421a0a027f0b0215 0c02170d0212 0e02160f0211100213")
        );
    }

    #[test]
    fn after_reset_functions_beyond_18_raise_and_keep_the_queue() {
        let mut s = state();
        assert!(s.receive(&[0, 0x03, 0x00], false).unwrap().is_some());
        assert_eq!(
            s.receive(&[8, 0x02, 0x06, 20, 0x02, 0x01], false),
            Err(SlcError::MissingFunction(20))
        );
        // The EOF reply is still queued and goes out with the next sub-negotiation.
        assert_eq!(
            s.receive(&[3, 0x62, 0x03], false),
            Ok(Some(vec![8, 0x82, 0x06]))
        );
    }

    #[test]
    fn variable_request_sends_the_current_table() {
        let mut s = state();
        assert_eq!(
            s.receive(&[0, 0x02, 0x00], false).unwrap().unwrap(),
            hex("010300020300036203 04220f050214060300 07621c080204 09421a0a027f0b0215 0c02170d0212 0e02160f0211100213")
        );
        assert_eq!(s.receive(&[0, 0x01, 0x00], false), Ok(None));
        assert_eq!(s.take_notes().len(), 1);
    }

    #[test]
    fn default_beyond_the_bsd_table_raises() {
        let mut s = state();
        assert_eq!(
            s.receive(&[19, 0x03, 0x00], false),
            Err(SlcError::NoDefault(19))
        );
    }

    #[test]
    fn partial_triplet_processes_nothing() {
        let mut s = state();
        assert_eq!(
            s.receive(&[4, 0x02, 0x1c, 5], false),
            Err(SlcError::PartialTriplet(4))
        );
        assert_eq!(s.get(4).map(|d| d.val), Some(0x0f));
    }

    #[test]
    fn buffer_full_after_sixty_triplets() {
        let mut s = state();
        let many: Vec<u8> = (0..61).flat_map(|_| [99u8, 0x02, 0x01]).collect();
        assert_eq!(s.receive(&many, false), Err(SlcError::BufferFull));
        assert_eq!(s.request_defaults(), Err(SlcError::BufferFull));
        // An SLC needing no reply flushes the 60 queued triplets.
        let out = s.receive(&[], false).unwrap().unwrap();
        assert_eq!(out.len(), MAX_QUEUED_TRIPLETS * 3);
        assert_eq!(s.request_defaults(), Ok(vec![0, 3, 0]));
    }

    #[test]
    fn cantchange_without_value_reverts_to_default_value() {
        let mut s = state();
        // EOR: ours DEFAULT/0. Theirs CANTCHANGE 0 -> stored & acked (ours was DEFAULT).
        assert_eq!(
            s.receive(&[6, 0x01, 0x00], false),
            Ok(Some(vec![6, 0x81, 0x00]))
        );
        // Now ours is CANTCHANGE/0; theirs CANTCHANGE 7 -> degenerate to NOSUPPORT.
        assert_eq!(
            s.receive(&[6, 0x01, 0x07], false),
            Ok(Some(vec![6, 0x00, 0x00]))
        );
    }

    #[test]
    fn forwardmask_is_all_zero() {
        assert_eq!(SlcState::forwardmask(false), vec![0u8; 16]);
        assert_eq!(SlcState::forwardmask(true), vec![0u8; 32]);
    }
}
