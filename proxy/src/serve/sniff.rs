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
    (b"HELO ", "an SMTP command"),
    (b"EHLO ", "an SMTP command"),
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
    // MySQL's greeting: a 3-byte length, sequence 0, protocol 10, a version digit.
    if let [_, _, _, 0, 10, d, ..] = bytes {
        if d.is_ascii_digit() {
            return Sniff::Other("a MySQL server");
        }
    }
    // PostgreSQL's error reply to a bad startup packet: 'E', a 4-byte length, 'S'.
    if let [b'E', 0, 0, _, _, b'S', ..] = bytes {
        return Sniff::Other("a PostgreSQL server");
    }
    by_prefix(bytes, SERVER)
}

/// The browser's first message.
pub fn client_first(bytes: &[u8], plain: bool) -> Sniff {
    if plain && matches!(bytes, [0x16, 0x03, ..]) {
        return Sniff::Other("a TLS handshake (scan with TLS instead)");
    }
    // A Redis command in its wire form: `*<count>\r\n$<len>\r\n…`.
    if let [b'*', d, ..] = bytes {
        if d.is_ascii_digit() && bytes.windows(3).any(|w| w == b"\r\n$") {
            return Sniff::Other("a Redis command");
        }
    }
    // A message is whole: what it does not show now, it never will.
    match by_prefix(bytes, CLIENT) {
        Sniff::Undecided => Sniff::Telnet,
        s => s,
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
        // The engine's opening burst, and typing.
        assert_eq!(
            client_first(b"\xff\xfb\x18\xff\xfd\x03", true),
            Sniff::Telnet
        );
        assert_eq!(client_first(b"GE", true), Sniff::Telnet);
        assert_eq!(client_first(b"get sword\r\n", true), Sniff::Telnet);
        assert_eq!(client_first(b"*wave*\r\n", true), Sniff::Telnet);
    }
}
