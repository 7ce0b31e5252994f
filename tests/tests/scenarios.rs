//! Checks that each fake server behaves as its script says, with a tiny blocking client (no Python, no iacscope).

use flate2::write::ZlibEncoder;
use flate2::{Compression, Decompress, FlushDecompress};
use iacscope_tests::harness::FakeServer;
use iacscope_tests::server::find;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use iacscope_tests::server::telnet::{DO, DONT, IAC, SB, SE, WILL, WONT};

struct Client {
    sock: TcpStream,
    got: Vec<u8>,
    eof: bool,
}

impl Client {
    fn connect(server: &FakeServer) -> Self {
        let sock = TcpStream::connect(server.addr()).expect("connect");
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        Client {
            sock,
            got: Vec::new(),
            eof: false,
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.sock.write_all(bytes).expect("send");
    }

    /// Reads for `dur` (or until EOF), appending to `got`.
    fn read_for(&mut self, dur: Duration) {
        let deadline = Instant::now() + dur;
        let mut buf = [0u8; 65536];
        while !self.eof && Instant::now() < deadline {
            match self.sock.read(&mut buf) {
                Ok(0) => self.eof = true,
                Ok(n) => self.got.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => self.eof = true,
            }
        }
    }

    /// Reads until `pattern` appears in `got` after `from`; panics after `timeout`.
    fn read_until(&mut self, from: usize, pattern: &[u8], timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(at) = find(&self.got[from.min(self.got.len())..], pattern) {
                return from + at + pattern.len();
            }
            assert!(
                Instant::now() < deadline && !self.eof,
                "did not receive {:?} within {timeout:?}; got {:?}",
                String::from_utf8_lossy(pattern),
                String::from_utf8_lossy(&self.got)
            );
            self.read_for(Duration::from_millis(50));
        }
    }
}

fn start(name: &str) -> FakeServer {
    FakeServer::start(
        iacscope_tests::scenario(name).unwrap_or_else(|| panic!("no scenario {name}")),
    )
    .expect("start")
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

#[test]
fn every_scenario_accepts_and_talks_or_closes() {
    // All at once, each on its own port: a connection gets bytes or a close within 1.5 s.
    let servers: Vec<_> = iacscope_tests::scenarios()
        .into_iter()
        .map(|s| (s.name.clone(), FakeServer::start(s).unwrap()))
        .collect();
    let clients: Vec<_> = servers.iter().map(|(_, s)| Client::connect(s)).collect();
    // Every scenario sends or closes within 0.3 s of connecting; give them 1 s together.
    std::thread::sleep(Duration::from_secs(1));
    for ((name, _), mut c) in servers.iter().zip(clients) {
        c.read_for(Duration::from_millis(60));
        assert!(!c.got.is_empty() || c.eof, "{name}: neither data nor close");
    }
}

#[test]
fn silent_sends_a_login_prompt_and_no_iac() {
    let srv = start("silent");
    let mut c = Client::connect(&srv);
    c.send(&[IAC, DO, 1, IAC, WILL, 86]);
    c.read_until(0, b"login: ", Duration::from_secs(3));
    c.read_for(Duration::from_millis(300));
    assert!(!c.got.contains(&IAC), "silent sent IAC: {:?}", c.got);
}

#[test]
fn mush_negotiates_mssp_charset_sga_loop_and_mccp2() {
    let srv = start("mush");
    let mut c = Client::connect(&srv);
    let opening = [
        IAC, DO, 34, IAC, DO, 24, IAC, DO, 31, IAC, WILL, 42, IAC, WILL, 70, IAC, WILL, 201, IAC,
        WILL, 86,
    ];
    c.read_until(0, &opening, Duration::from_secs(3));
    c.send(&[
        IAC, DO, 70, IAC, DO, 42, IAC, DO, 3, IAC, DO, 3, IAC, DO, 0, IAC, WILL, 24,
    ]);
    let at = c.read_until(
        0,
        b"\x01GENRE\x02Adventure\x02Social",
        Duration::from_secs(3),
    );
    c.read_until(
        0,
        b"\xff\xfa\x2a\x01;x-penn-def;UTF-8;ISO-8859-1\xff\xf0",
        Duration::from_secs(3),
    );
    c.read_until(0, &[IAC, SB, 24, 1, IAC, SE], Duration::from_secs(3));
    c.read_until(0, &[IAC, WONT, 0], Duration::from_secs(3));
    c.read_for(Duration::from_millis(200));
    assert_eq!(
        count(&c.got, &[IAC, WILL, 3]),
        2,
        "WILL SGA on every DO SGA"
    );
    assert!(at > 0);
    // Nothing compressed before DO MCCP2.
    assert!(find(&c.got, &[IAC, SB, 86, IAC, SE]).is_none());
    c.send(&[IAC, DO, 86]);
    let start = c.read_until(0, &[IAC, SB, 86, IAC, SE], Duration::from_secs(3));
    let inflate = |data: &[u8]| {
        let mut z = Decompress::new(true);
        let mut out = vec![0u8; 1 << 16];
        z.decompress(data, &mut out, FlushDecompress::Sync)
            .expect("valid zlib");
        out.truncate(z.total_out() as usize);
        out
    };
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut plain = Vec::new();
    while find(&plain, b"connect <name>").is_none() {
        assert!(
            Instant::now() < deadline,
            "no compressed banner: {:?}",
            String::from_utf8_lossy(&plain)
        );
        c.read_for(Duration::from_millis(100));
        plain = inflate(&c.got[start..]);
    }
    assert!(find(&plain, b"Welcome to FakeMUSH").is_some());
    // The repeated WILL SGA is compressed now, too.
    c.send(&[IAC, DO, 3]);
    c.read_for(Duration::from_millis(200));
    assert!(find(&inflate(&c.got[start..]), &[IAC, WILL, 3]).is_some());
}

#[test]
fn weird_sends_probes_then_repeats_press_return() {
    let srv = start("weird");
    let mut c = Client::connect(&srv);
    c.send(&[IAC, DO, 42]);
    c.read_until(
        0,
        b"\xff\xfa\x2a\x01 x-bogus-1 x-bogus-2\xff\xf0",
        Duration::from_secs(3),
    );
    c.read_until(
        0,
        b"Detecting terminal...\x1b[6nX\x1b[6n\x1b[c",
        Duration::from_secs(3),
    );
    let at = c.read_until(0, b"(Y/n) ", Duration::from_secs(3));
    c.send(b"y\r\n");
    let at = c.read_until(at, b"Press RETURN to continue: ", Duration::from_secs(3));
    c.send(b"\r\n");
    let at2 = c.read_until(
        at,
        b"\r\nPress RETURN to continue: ",
        Duration::from_secs(3),
    );
    assert_eq!(&c.got[at..at2], b"\r\nPress RETURN to continue: ");
}

#[test]
fn close_closes_after_300ms() {
    let srv = start("close");
    let t = Instant::now();
    let mut c = Client::connect(&srv);
    c.read_for(Duration::from_secs(3));
    assert!(c.eof, "not closed");
    assert!(
        t.elapsed() >= Duration::from_millis(250),
        "closed too early: {:?}",
        t.elapsed()
    );
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(c.got.starts_with(&[IAC, DO, 24, IAC, WILL, 1]));
    assert!(find(&c.got, b"try again later").is_some());
}

#[test]
fn naive_answers_every_time_except_mccp3_and_tm() {
    let srv = start("naive");
    let mut c = Client::connect(&srv);
    c.read_until(
        0,
        &[
            IAC, DO, 1, IAC, DO, 6, IAC, WILL, 31, IAC, WILL, 24, IAC, WILL, 3,
        ],
        Duration::from_secs(3),
    );
    c.send(&[
        IAC, DO, 0, IAC, DO, 0, IAC, WILL, 201, IAC, DO, 87, IAC, WILL, 6, IAC, WONT, 1, IAC, WILL,
        87,
    ]);
    c.read_until(0, &[IAC, DONT, 87], Duration::from_secs(3));
    c.read_for(Duration::from_millis(200));
    assert_eq!(count(&c.got, &[IAC, WILL, 0]), 2);
    assert_eq!(count(&c.got, &[IAC, DO, 201]), 1);
    assert_eq!(count(&c.got, &[IAC, WONT, 87]), 1);
    assert_eq!(
        count(&c.got, &[IAC, DO, 6]),
        1,
        "WILL TM must not be answered"
    );
    assert_eq!(
        count(&c.got, &[IAC, DONT, 1]),
        0,
        "naive never answers WONT"
    );
}

#[test]
fn refuse_policy_refuses_and_acknowledges_silently() {
    let srv = start("zmp");
    let mut c = Client::connect(&srv);
    c.send(&[IAC, DO, 93, IAC, DO, 0, IAC, WILL, 86]);
    c.read_until(0, &[IAC, DONT, 86], Duration::from_secs(3));
    c.read_until(
        0,
        b"zmp.ident\x00FakeZMP\x001.0\x00",
        Duration::from_secs(3),
    );
    c.read_for(Duration::from_millis(100));
    assert_eq!(count(&c.got, &[IAC, WONT, 0]), 1);
    assert_eq!(
        count(&c.got, &[IAC, WILL, 93]),
        1,
        "DO ZMP acknowledges our WILL: no reply"
    );
    assert_eq!(count(&c.got, &[IAC, WONT, 93]), 0);
}

#[test]
fn slow_800_answers_late() {
    let srv = start("slow-800");
    let mut c = Client::connect(&srv);
    let t = Instant::now();
    c.send(&[IAC, DO, 3]);
    c.read_until(0, &[IAC, WILL, 3], Duration::from_secs(3));
    assert!(
        t.elapsed() >= Duration::from_millis(750),
        "answered after {:?}",
        t.elapsed()
    );
}

#[test]
fn mccp3_inflates_what_the_client_sends() {
    let srv = start("mccp3");
    let mut c = Client::connect(&srv);
    c.read_until(0, b"Press RETURN: ", Duration::from_secs(3));
    let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
    z.write_all(b"\r\n").unwrap();
    z.flush().unwrap();
    let mut msg = vec![IAC, DO, 87, IAC, SB, 87, IAC, SE];
    msg.extend_from_slice(z.get_ref());
    c.send(&msg);
    c.read_until(0, b"got your return", Duration::from_secs(3));
}

#[test]
fn comport_answers_the_signature_request() {
    let srv = start("comport");
    let mut c = Client::connect(&srv);
    c.send(&[IAC, DO, 44, IAC, SB, 44, 0, IAC, SE]);
    c.read_until(
        0,
        b"\xff\xfa\x2c\x64FakeSerial 2217\xff\xf0",
        Duration::from_secs(3),
    );
    c.read_until(
        0,
        &[IAC, SB, 44, 107, 0x30, IAC, SE],
        Duration::from_secs(3),
    );
}

#[test]
fn ttype_cycle_asks_four_times() {
    let srv = start("ttype-cycle");
    let mut c = Client::connect(&srv);
    c.send(&[IAC, WILL, 24]);
    let send = [IAC, SB, 24, 1, IAC, SE];
    let mut at = 0;
    for i in 0..4 {
        at = c.read_until(at, &send, Duration::from_secs(3));
        if i < 3 {
            c.send(b"\xff\xfa\x18\x00VT100\xff\xf0");
        }
    }
    c.read_until(0, b"ttype cycle done", Duration::from_secs(3));
}

#[test]
fn utf8_menu_and_esc_prompts_wait_for_the_answer() {
    let srv = start("utf8-menu");
    let mut c = Client::connect(&srv);
    c.read_until(0, b"1) UTF-8", Duration::from_secs(3));
    c.read_for(Duration::from_millis(200));
    assert!(find(&c.got, "☺".as_bytes()).is_none());
    c.send(b"1\r\n");
    c.read_until(0, "☺".as_bytes(), Duration::from_secs(3));

    let srv = start("press-esc-twice");
    let mut c = Client::connect(&srv);
    c.read_until(0, b"Press ESC twice", Duration::from_secs(3));
    c.send(b"\x1b\x1b");
    c.read_until(0, b"Thank you.", Duration::from_secs(3));
}

#[test]
fn hostile_drip_is_slow_and_garbage_follows_mccp2() {
    let srv = start("hostile-drip");
    let mut c = Client::connect(&srv);
    c.read_for(Duration::from_millis(1000));
    let dots = count(&c.got, b".");
    assert!((5..=15).contains(&dots), "{dots} bytes in 1 s");

    let srv = start("hostile-mccp2-garbage");
    let mut c = Client::connect(&srv);
    c.send(&[IAC, DO, 86]);
    c.read_until(
        0,
        b"\xff\xfa\x56\xff\xf0this is definitely not zlib",
        Duration::from_secs(3),
    );
}

#[test]
fn hostile_endless_sb_never_ends() {
    let srv = start("hostile-endless-sb");
    let mut c = Client::connect(&srv);
    c.read_for(Duration::from_millis(500));
    let at = find(&c.got, &[IAC, SB, 24]).expect("SB started");
    assert!(c.got.len() - at > 10_000);
    assert!(!c.got[at + 3..].contains(&IAC));
}

#[test]
fn dropping_the_server_closes_connections() {
    let srv = start("hostile-endless-banner");
    let mut c = Client::connect(&srv);
    c.read_for(Duration::from_millis(200));
    assert!(!c.got.is_empty());
    drop(srv);
    c.read_for(Duration::from_secs(3));
    assert!(c.eof, "connection still open after the server stopped");
}

#[test]
fn linemode_slc_reply_sends_slc_after_will_linemode_and_captures_the_client() {
    let server = FakeServer::start_capturing(
        iacscope_tests::scenario("linemode-slc-reply").expect("scenario linemode-slc-reply"),
    )
    .expect("start");
    let mut c = Client::connect(&server);
    let at = c.read_until(0, &[IAC, DO, 34], Duration::from_secs(2));
    let reply = [IAC, WILL, 34, IAC, SB, 34, 3, 0, 3, 0, IAC, SE];
    c.send(&reply);
    let slc = c.read_until(at, &[IAC, SB, 34, 3, 1, 3, 0], Duration::from_secs(2));
    c.read_until(slc, &[3, 0x62, 3, IAC, SE], Duration::from_secs(2));
    // IAC in a value arrives doubled; six SLC sub-negotiations in all.
    assert!(find(&c.got, &[15, 1, IAC, IAC, 19]).is_some());
    assert_eq!(count(&c.got, &[IAC, SB, 34, 3]), 6);
    // The capture holds exactly what the client sent, on the first connection.
    let deadline = Instant::now() + Duration::from_secs(2);
    while server.received().first().map(Vec::len) != Some(reply.len()) {
        assert!(
            Instant::now() < deadline,
            "capture: {:?}",
            server.received()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(server.received(), vec![reply.to_vec()]);
    assert_eq!(
        iacscope_tests::harness::sb_frames(&server.received()[0], 34),
        vec![reply[3..].to_vec()]
    );
}
