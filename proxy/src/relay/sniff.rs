//! Other protocols, told by their first bytes, so that the relay carries telnet only.
//!
//! The proxy does not parse telnet (the engine does), but it must not become a way for any
//! web page to talk to an HTTP, mail or database server and read the answer. So it looks
//! at two things only: the first bytes the server sends (a greeting or an error reply of a
//! well-known non-telnet service) and the first message the browser sends (a request of
//! such a service; an honest page opens with its telnet negotiation, `IAC …`). A match ends
//! the session as `not_telnet` before those bytes are relayed. Anything else, including any
//! later byte, is relayed untouched. ARCHITECTURE.md records why ports are not enough.

/// What the first bytes say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sniff {
    /// Nothing another protocol would send first: relay.
    Telnet,
    /// Another protocol's opening, named for the sentence.
    Other(&'static str),
    /// Too few bytes to tell (they begin like a signature): wait a moment for more.
    Undecided,
}

/// How long the relay holds back server bytes that are still [`Sniff::Undecided`] before it
/// treats them as telnet (a signature split across TCP segments arrives within a round trip).
pub const UNDECIDED_WAIT: std::time::Duration = std::time::Duration::from_millis(300);

/// Opening bytes of servers that are not telnet, by what they are. Each is what that
/// service sends first, or what it answers to the engine's opening `IAC` negotiation.
const SERVER: &[(&[u8], &str)] = &[
    (b"HTTP/", "an HTTP server"),
    (b"SSH-", "an SSH server"),
    (b"220 ", "an SMTP or FTP server"),
    (b"220-", "an SMTP or FTP server"),
    (b"+OK", "a POP3 server"),
    (b"* OK", "an IMAP server"),
    (b"* PREAUTH", "an IMAP server"),
    (b"-ERR ", "a Redis server"),
    (b"-NOAUTH", "a Redis server"),
    (b"-DENIED", "a Redis server"),
    (b"-WRONGPASS", "a Redis server"),
    (b"-MISCONF", "a Redis server"),
    (b"421 ", "an SMTP or FTP server"),
    (b"421-", "an SMTP or FTP server"),
    (b"554 ", "an SMTP server"),
    (b"554-", "an SMTP server"),
    (b"NOTICE AUTH", "an IRC server"),
    (b"RFB ", "a VNC server"),
    (b"@RSYNCD:", "an rsync server"),
    (b"AMQP\x00", "an AMQP broker"),
];

/// Opening bytes of requests the browser's page never sends first.
const CLIENT: &[(&[u8], &str)] = &[
    (b"GET ", "an HTTP request"),
    (b"POST ", "an HTTP request"),
    (b"HEAD ", "an HTTP request"),
    (b"PUT ", "an HTTP request"),
    (b"DELETE ", "an HTTP request"),
    (b"OPTIONS ", "an HTTP request"),
    (b"PATCH ", "an HTTP request"),
    (b"CONNECT ", "an HTTP request"),
    (b"TRACE ", "an HTTP request"),
    (b"PRI * HTTP/2", "an HTTP/2 request"),
];

fn by_prefix(bytes: &[u8], table: &[(&[u8], &'static str)]) -> Sniff {
    let mut undecided = false;
    for (sig, what) in table {
        if bytes.starts_with(sig) {
            return Sniff::Other(what);
        }
        if !bytes.is_empty() && sig.starts_with(bytes) {
            undecided = true;
        }
    }
    if undecided {
        Sniff::Undecided
    } else {
        Sniff::Telnet
    }
}

/// The server's first bytes (all received so far). `plain`: the session is plain TCP, where
/// a TLS record means the port wants TLS.
pub fn server_first(bytes: &[u8], plain: bool) -> Sniff {
    // A TLS server answers the engine's cleartext with an alert record (or, rarely, opens
    // with a handshake record): content type 21 or 22, version 3.x.
    if plain {
        match bytes {
            [0x15 | 0x16, 0x03, ..] => return Sniff::Other("a TLS server (scan it with TLS)"),
            [0x15 | 0x16] => return Sniff::Undecided,
            _ => {}
        }
    }
    // MySQL's greeting: a 3-byte length, sequence 0, protocol 10, a version digit; or its
    // refusal ("Host … is not allowed", "Too many connections"): sequence 0, then 0xFF.
    match bytes {
        [_, _, 0, 0, 10, d, ..] if d.is_ascii_digit() => return Sniff::Other("a MySQL server"),
        [_, _, 0, 0, 0xff, ..] => return Sniff::Other("a MySQL server"),
        [_, _, 0, 0] | [_, _, 0, 0, 10] => return Sniff::Undecided,
        _ => {}
    }
    // PostgreSQL's error reply to a bad startup packet: 'E', a 4-byte length, 'S'.
    match bytes {
        [b'E', 0, 0, _, _, b'S', ..] => return Sniff::Other("a PostgreSQL server"),
        [b'E', 0] | [b'E', 0, 0] | [b'E', 0, 0, _] | [b'E', 0, 0, _, _] => return Sniff::Undecided,
        _ => {}
    }
    // An IRC server's notice (`:irc.example NOTICE * :…`).
    if bytes.first() == Some(&b':') {
        let line = &bytes[..bytes.len().min(80)];
        if line.windows(8).any(|w| w == b" NOTICE ") {
            return Sniff::Other("an IRC server");
        }
    }
    by_prefix(bytes, SERVER)
}

/// The browser's first data bytes (after its leading telnet commands), all received so far.
pub fn client_first(bytes: &[u8], plain: bool) -> Sniff {
    if plain {
        match bytes {
            [0x16, 0x03, ..] => return Sniff::Other("a TLS handshake (scan with TLS instead)"),
            [0x16] => return Sniff::Undecided,
            _ => {}
        }
    }
    // A Redis command in its wire form: `*<count>\r\n$<len>\r\n…`.
    if let [b'*', d, ..] = bytes {
        if d.is_ascii_digit() {
            if bytes.windows(3).any(|w| w == b"\r\n$") {
                return Sniff::Other("a Redis command");
            }
            if bytes.len() < 8 {
                return Sniff::Undecided;
            }
        }
    }
    // SMTP verbs are case-insensitive (HTTP methods are not, and `get sword` is a MUD's).
    let upper: Vec<u8> = bytes.iter().take(16).map(u8::to_ascii_uppercase).collect();
    match by_prefix(&upper, SMTP) {
        Sniff::Telnet => by_prefix(bytes, CLIENT),
        s => s,
    }
}

/// SMTP commands, matched without regard to case.
const SMTP: &[(&[u8], &str)] = &[
    (b"HELO ", "an SMTP command"),
    (b"EHLO ", "an SMTP command"),
    (b"MAIL FROM:", "an SMTP command"),
];

/// Length of the complete telnet commands at the start of `bytes` (`IAC` verb, `IAC`
/// WILL/WONT/DO/DONT option, `IAC SB … IAC SE`): what the web app sends before any data.
/// `IAC IAC` is a data byte, so it ends the prefix; so does a command cut short.
pub fn telnet_commands_len(bytes: &[u8]) -> usize {
    const IAC: u8 = 255;
    const SB: u8 = 250;
    const SE: u8 = 240;
    let mut i = 0;
    while bytes.get(i) == Some(&IAC) {
        let len = match bytes.get(i + 1) {
            None | Some(&IAC) => break,
            Some(251..=254) if i + 2 < bytes.len() => 3,
            Some(251..=254) => break,
            Some(&SB) => {
                // Up to the first IAC SE (IAC IAC inside is an escaped 255).
                let mut j = i + 2;
                let mut end = None;
                while j + 1 < bytes.len() {
                    match (bytes[j], bytes[j + 1]) {
                        (IAC, IAC) => j += 2,
                        (IAC, SE) => {
                            end = Some(j + 2);
                            break;
                        }
                        _ => j += 1,
                    }
                }
                match end {
                    Some(e) => e - i,
                    None => break,
                }
            }
            Some(_) => 2,
        };
        i += len;
    }
    i
}

/// The browser-to-server direction until it has shown it speaks telnet and the server has
/// shown it is not another protocol (or stayed silent): the page's leading telnet commands
/// go through at once; from its first data byte on, everything is held (in order) until
/// (a) those data bytes are not another protocol's request and (b) the server's first bytes
/// passed [`server_first`] or it stayed silent for [`SILENT_SERVER`]. So a page cannot
/// pipeline commands at a mail server ahead of its greeting, nor split `GET ` over several
/// messages. Held bytes are bounded ([`MAX_HELD`]).
#[derive(Debug, Default)]
pub struct UpGate {
    held: Vec<u8>,
    data_ok: bool,
    open: bool,
}

/// How long a server that has sent nothing holds the page's data back: telnet servers that
/// wait for the client exist; a mail, FTP or SSH server greets within a round trip.
pub const SILENT_SERVER: std::time::Duration = std::time::Duration::from_secs(1);

/// Held bytes past which the relay reads no more from the page until the gate opens (a
/// telnet client sends a few dozen bytes before a silent server's first second is over).
/// One message more may land on top, so the bound in memory is this plus the largest
/// websocket message.
pub const MAX_HELD: usize = 16 * 1024;

impl UpGate {
    /// A gate for a plain or TLS session.
    pub fn new() -> UpGate {
        UpGate::default()
    }

    /// Nothing is held any more and nothing will be: bytes go straight through.
    pub fn settled(&self) -> bool {
        self.data_ok && self.open && self.held.is_empty()
    }

    /// Whether bytes are being held.
    pub fn holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// Whether the server side has been cleared ([`UpGate::open`]).
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Whether the held bytes reached [`MAX_HELD`]: read no more from the page until the
    /// gate opens.
    pub fn full(&self) -> bool {
        self.held.len() >= MAX_HELD
    }

    /// Takes bytes from the page: what may go to the server now, or the protocol they are.
    pub fn push(&mut self, data: &[u8], plain: bool) -> Result<Vec<u8>, &'static str> {
        if self.settled() {
            return Ok(data.to_vec());
        }
        let mut now = Vec::new();
        if self.held.is_empty() {
            let n = telnet_commands_len(data);
            now.extend_from_slice(&data[..n]);
            self.held.extend_from_slice(&data[n..]);
        } else {
            self.held.extend_from_slice(data);
        }
        self.check(plain)?;
        now.extend(self.release());
        Ok(now)
    }

    /// The server vouched (its first bytes passed) or stayed silent: what may go now.
    pub fn open(&mut self, plain: bool) -> Result<Vec<u8>, &'static str> {
        self.open = true;
        self.check(plain)?;
        Ok(self.release())
    }

    fn check(&mut self, plain: bool) -> Result<(), &'static str> {
        if self.data_ok {
            return Ok(());
        }
        let skip = telnet_commands_len(&self.held);
        let data = &self.held[skip..];
        if data.is_empty() {
            return Ok(());
        }
        match client_first(data, plain) {
            Sniff::Other(what) => Err(what),
            Sniff::Telnet => {
                self.data_ok = true;
                Ok(())
            }
            Sniff::Undecided => Ok(()),
        }
    }

    fn release(&mut self) -> Vec<u8> {
        let only_commands = telnet_commands_len(&self.held) == self.held.len();
        if self.open && (self.data_ok || only_commands) {
            std::mem::take(&mut self.held)
        } else {
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers() {
        let other = |b: &[u8]| matches!(server_first(b, true), Sniff::Other(_));
        assert!(other(b"HTTP/1.0 400 Bad Request\r\n"));
        assert!(other(b"SSH-2.0-OpenSSH_9.2\r\n"));
        assert!(other(b"220 mail.example ESMTP Postfix\r\n"));
        assert!(other(b"+OK POP3 ready\r\n"));
        assert!(other(b"* OK [CAPABILITY IMAP4rev1] ready\r\n"));
        assert!(other(b"-ERR unknown command '\xff\xfb\x18'\r\n"));
        assert!(other(b"RFB 003.008\n"));
        assert!(other(&[0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x32]));
        assert!(other(b"J\x00\x00\x00\x0a8.0.36\x00"));
        assert!(other(b"E\x00\x00\x00\x50SFATAL\x00"));
        // Telnet servers: negotiation, banners, ANSI art, a bare prompt.
        for b in [
            &b"\xff\xfd\x18\xff\xfb\x01"[..],
            b"Welcome to the MUD!\r\n",
            b"\x1b[2J\x1b[1;31mDRAGON",
            b"Login: ",
            b"2200 players online",
            b"Email: ",
        ] {
            assert_eq!(server_first(b, true), Sniff::Telnet, "{b:?}");
        }
        // On a TLS session the stream is already decrypted.
        assert_eq!(server_first(&[0x16, 0x03, 0x01], false), Sniff::Telnet);
        // A signature cut short waits for more.
        assert_eq!(server_first(b"HTT", true), Sniff::Undecided);
        assert_eq!(server_first(b"22", true), Sniff::Undecided);
        assert_eq!(server_first(&[0x16], true), Sniff::Undecided);
    }

    #[test]
    fn clients() {
        let other = |b: &[u8]| matches!(client_first(b, true), Sniff::Other(_));
        assert!(other(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(other(b"POST /api HTTP/1.1\r\n"));
        assert!(other(b"EHLO attacker\r\n"));
        assert!(other(b"*1\r\n$4\r\nPING\r\n"));
        assert!(other(&[0x16, 0x03, 0x01, 0x02, 0x00]));
        assert!(other(b"helo attacker\r\n"), "SMTP verbs in any case");
        // Typing, and what begins like a request but is not.
        assert_eq!(client_first(b"GE", true), Sniff::Undecided);
        assert_eq!(client_first(b"get sword\r\n", true), Sniff::Telnet);
        assert_eq!(client_first(b"*wave*\r\n", true), Sniff::Telnet);
        assert_eq!(client_first(b"\r\n", true), Sniff::Telnet);
    }

    #[test]
    fn telnet_command_prefixes() {
        let burst = b"\xff\xfb\x18\xff\xfd\x03\xff\xf1";
        assert_eq!(telnet_commands_len(burst), burst.len());
        assert_eq!(telnet_commands_len(b"\xff\xfa\x18\x00xterm\xff\xf0GET"), 11);
        assert_eq!(telnet_commands_len(b"\xff\xfa\x18\x00xt"), 0, "cut short");
        assert_eq!(telnet_commands_len(b"\xff\xfb"), 0, "cut short");
        assert_eq!(telnet_commands_len(b"\xff\xffabc"), 0, "IAC IAC is data");
        assert_eq!(telnet_commands_len(b"hello"), 0);
    }

    #[test]
    fn the_upward_gate() {
        let burst = &b"\xff\xfb\x18\xff\xfd\x03"[..];
        // Commands go at once; data waits for the server.
        let mut g = UpGate::new();
        assert_eq!(g.push(burst, true), Ok(burst.to_vec()));
        assert_eq!(g.push(b"\r\n", true), Ok(vec![]));
        assert!(g.holding());
        assert_eq!(g.open(true), Ok(b"\r\n".to_vec()));
        assert!(g.settled());
        let later = b"GET / HTTP/1.1\r\n";
        assert_eq!(g.push(later, true), Ok(later.to_vec()));
        // A request split over messages is seen whole.
        let mut g = UpGate::new();
        assert_eq!(g.push(b"G", true), Ok(vec![]));
        assert_eq!(g.push(b"ET /secret\r\n", true), Err("an HTTP request"));
        // After the server vouched, the first data is still checked before it goes.
        let mut g = UpGate::new();
        assert_eq!(g.open(true), Ok(vec![]));
        assert_eq!(g.push(burst, true), Ok(burst.to_vec()));
        assert_eq!(g.push(b"EH", true), Ok(vec![]));
        assert_eq!(g.push(b"LO x\r\n", true), Err("an SMTP command"));
        // Pipelined commands behind the burst wait for the server (a mail server greets,
        // and the session ends before they go).
        let mut g = UpGate::new();
        let mut first = burst.to_vec();
        first.extend_from_slice(b"\r\nMAIL FROM:<a@b>\r\n");
        assert_eq!(g.push(&first, true), Ok(burst.to_vec()));
        assert!(g.holding());
        // Bounded: the relay stops reading once it is full.
        let mut g = UpGate::new();
        assert_eq!(g.push(&vec![b'x'; MAX_HELD], true), Ok(vec![]));
        assert!(g.full());
        assert_eq!(g.open(true).map(|b| b.len()), Ok(MAX_HELD));
    }
}
