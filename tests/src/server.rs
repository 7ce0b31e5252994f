//! Runs a [`Scenario`] for every connection on a tokio listener; the script language itself lives in `script.rs`.
//!
//! Each connection has two halves: a reader that parses what the client sends (inflating
//! it after `IAC SB MCCP3 IAC SE`), answers negotiation by rule or policy, and records the
//! bytes for `expect`; and the script runner, which writes (deflating after `mccp2`).
//! Everything is bounded: a connection lives at most [`CONNECTION_LIFETIME`], and the
//! receive buffer keeps at most [`MAX_RECORDED`] bytes.

use crate::script::{Policy, PolicyKind, Rule, Scenario, Step};
use flate2::write::ZlibEncoder;
use flate2::{Compression, Decompress, FlushDecompress, Status};
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;

/// A connection is dropped after this long, whatever the script says.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(120);
/// Received bytes kept for `expect` and rules; older bytes are forgotten.
pub const MAX_RECORDED: usize = 1 << 20;
/// Received bytes captured per connection for a test (see [`serve_capturing`]); later
/// bytes are not captured.
pub const MAX_CAPTURED: usize = 1 << 20;
/// Connections captured at most; later connections are not captured.
pub const MAX_CAPTURED_CONNECTIONS: usize = 64;

/// What every connection sent us (after MCCP3 inflation), one entry per connection in
/// accept order, each at most [`MAX_CAPTURED`] bytes.
pub type Captured = Arc<Mutex<Vec<Vec<u8>>>>;

/// Telnet's command bytes and the MCCP options, written out here rather than taken from
/// the engine: the fake servers stay independent of the code they test.
pub mod telnet {
    /// Interpret As Command.
    pub const IAC: u8 = 255;
    /// Sub-negotiation begin.
    pub const SB: u8 = 250;
    /// Sub-negotiation end.
    pub const SE: u8 = 240;
    /// WILL.
    pub const WILL: u8 = 251;
    /// WONT.
    pub const WONT: u8 = 252;
    /// DO.
    pub const DO: u8 = 253;
    /// DONT.
    pub const DONT: u8 = 254;
    /// MCCP2 (server-to-client compression).
    pub const MCCP2: u8 = 86;
    /// MCCP3 (client-to-server compression).
    pub const MCCP3: u8 = 87;
}

use telnet::{DO, DONT, IAC, MCCP2, MCCP3, SB, SE, WILL, WONT};

/// Accepts connections forever and runs `scenario` on each.
pub async fn serve(listener: TcpListener, scenario: Arc<Scenario>) -> std::io::Result<()> {
    serve_capturing(listener, scenario, None).await
}

/// As [`serve`], and when `capture` is given, appends what each connection receives to it.
pub async fn serve_capturing(
    listener: TcpListener,
    scenario: Arc<Scenario>,
    capture: Option<Captured>,
) -> std::io::Result<()> {
    loop {
        let (sock, _) = listener.accept().await?;
        let scenario = scenario.clone();
        let slot = capture.as_ref().and_then(|c| {
            let mut all = c.lock().ok()?;
            if all.len() >= MAX_CAPTURED_CONNECTIONS {
                return None;
            }
            all.push(Vec::new());
            Some((c.clone(), all.len() - 1))
        });
        tokio::spawn(async move {
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, handle(sock, scenario, slot)).await;
        });
    }
}

/// RFC 1143 option state, simplified: we never queue.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Q {
    No,
    WantYes,
    Yes,
}

enum Parse {
    Data,
    Iac,
    Cmd(u8),
    Sb(Vec<u8>),
    SbIac(Vec<u8>),
}

struct RuleState {
    rule: Rule,
    cursor: usize,
    spent: bool,
}

struct State {
    raw: Vec<u8>,
    expect_cursor: usize,
    rules: Vec<RuleState>,
    policy: Policy,
    us: [Q; 256],
    him: [Q; 256],
    parse: Parse,
    inflate: Option<Decompress>,
    closed: bool,
    /// Where to capture received bytes: the shared list and this connection's index.
    capture: Option<(Captured, usize)>,
}

struct Writer {
    half: OwnedWriteHalf,
    deflate: Option<ZlibEncoder<Vec<u8>>>,
}

struct Conn {
    state: Mutex<State>,
    writer: tokio::sync::Mutex<Writer>,
    notify: Notify,
}

impl State {
    /// Notes the negotiation commands we send, so later DO/WILL are seen as acknowledgements.
    fn note_outgoing(&mut self, bytes: &[u8]) {
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == IAC && i + 1 < bytes.len() {
                match bytes[i + 1] {
                    IAC => i += 2,
                    v @ (WILL | WONT | DO | DONT) if i + 2 < bytes.len() => {
                        let opt = bytes[i + 2] as usize;
                        match v {
                            WILL if self.us[opt] == Q::No => self.us[opt] = Q::WantYes,
                            WONT => self.us[opt] = Q::No,
                            DO if self.him[opt] == Q::No => self.him[opt] = Q::WantYes,
                            DONT => self.him[opt] = Q::No,
                            _ => {}
                        }
                        i += 3;
                    }
                    _ => i += 2,
                }
            } else {
                i += 1;
            }
        }
    }

    /// Handles a received negotiation command; returns the replies `(delay ms, bytes)`.
    fn on_command(&mut self, verb: u8, opt: u8, out: &mut Vec<(u64, Vec<u8>)>) {
        let pat = [IAC, verb, opt];
        let mut matched = false;
        for rs in &mut self.rules {
            if rs.rule.pattern == pat && !rs.spent {
                matched = true;
                rs.spent = rs.rule.once;
                out.push((rs.rule.after_ms, rs.rule.reply.clone()));
            }
        }
        if matched {
            return;
        }
        let o = opt as usize;
        let Policy { kind, after_ms } = self.policy;
        let mut reply = |b: u8| out.push((after_ms, vec![IAC, b, opt]));
        match verb {
            DO => match (kind, self.us[o]) {
                (PolicyKind::Naive, _) => {
                    self.us[o] = Q::Yes;
                    reply(WILL);
                }
                (_, Q::WantYes | Q::Yes) => self.us[o] = Q::Yes,
                (PolicyKind::Accept, Q::No) => {
                    self.us[o] = Q::Yes;
                    reply(WILL);
                }
                (PolicyKind::Refuse, Q::No) => reply(WONT),
                (PolicyKind::Ignore, Q::No) => {}
            },
            WILL => match (kind, self.him[o]) {
                (PolicyKind::Naive, _) => {
                    self.him[o] = Q::Yes;
                    reply(DO);
                }
                (_, Q::WantYes | Q::Yes) => self.him[o] = Q::Yes,
                (PolicyKind::Accept, Q::No) => {
                    self.him[o] = Q::Yes;
                    reply(DO);
                }
                (PolicyKind::Refuse, Q::No) => reply(DONT),
                (PolicyKind::Ignore, Q::No) => {}
            },
            // The naive server never answers DONT/WONT (that is what makes it naive).
            DONT => {
                if self.us[o] == Q::Yes && !matches!(kind, PolicyKind::Ignore | PolicyKind::Naive) {
                    reply(WONT);
                }
                self.us[o] = Q::No;
            }
            WONT => {
                if self.him[o] == Q::Yes && !matches!(kind, PolicyKind::Ignore | PolicyKind::Naive)
                {
                    reply(DONT);
                }
                self.him[o] = Q::No;
            }
            _ => {}
        }
    }

    /// Feeds plain (already inflated) client bytes. Returns the index just after an
    /// `IAC SB MCCP3 IAC SE`, if one ended inside `bytes`.
    fn feed_plain(&mut self, bytes: &[u8], out: &mut Vec<(u64, Vec<u8>)>) -> Option<usize> {
        for (i, &b) in bytes.iter().enumerate() {
            if let Some((all, n)) = &self.capture {
                if let Some(mine) = all.lock().ok().as_mut().and_then(|a| a.get_mut(*n)) {
                    if mine.len() < MAX_CAPTURED {
                        mine.push(b);
                    }
                }
            }
            self.raw.push(b);
            let next = match std::mem::replace(&mut self.parse, Parse::Data) {
                Parse::Data if b == IAC => Parse::Iac,
                Parse::Data => Parse::Data,
                Parse::Iac => match b {
                    WILL | WONT | DO | DONT => Parse::Cmd(b),
                    SB => Parse::Sb(Vec::new()),
                    _ => Parse::Data,
                },
                Parse::Cmd(verb) => {
                    self.on_command(verb, b, out);
                    Parse::Data
                }
                Parse::Sb(mut p) if b == IAC => {
                    p.truncate(4096);
                    Parse::SbIac(p)
                }
                Parse::Sb(mut p) => {
                    if p.len() < 4096 {
                        p.push(b);
                    }
                    Parse::Sb(p)
                }
                Parse::SbIac(p) if b == SE => {
                    if p == [MCCP3] && self.inflate.is_none() {
                        self.inflate = Some(Decompress::new(true));
                        self.parse = Parse::Data;
                        self.scan_rules(out);
                        return Some(i + 1);
                    }
                    Parse::Data
                }
                Parse::SbIac(mut p) => {
                    p.push(b);
                    Parse::Sb(p)
                }
            };
            self.parse = next;
        }
        self.scan_rules(out);
        None
    }

    /// Feeds bytes as they come off the socket.
    fn feed(&mut self, mut bytes: &[u8], out: &mut Vec<(u64, Vec<u8>)>) {
        loop {
            if let Some(z) = self.inflate.as_mut() {
                let mut plain = Vec::new();
                let mut buf = [0u8; 16 * 1024];
                let mut input = bytes;
                while !input.is_empty() {
                    let before_in = z.total_in();
                    let before_out = z.total_out();
                    let status = z.decompress(input, &mut buf, FlushDecompress::Sync);
                    let used = (z.total_in() - before_in) as usize;
                    let made = (z.total_out() - before_out) as usize;
                    plain.extend_from_slice(&buf[..made]);
                    input = &input[used..];
                    match status {
                        Ok(Status::StreamEnd) => {
                            self.inflate = None;
                            break;
                        }
                        Ok(_) if used == 0 && made == 0 => break,
                        Ok(_) => {}
                        Err(_) => {
                            // Garbage: stop inflating and take the rest as plain bytes.
                            self.inflate = None;
                            break;
                        }
                    }
                }
                let rest = input.to_vec();
                self.feed_plain(&plain, out);
                if rest.is_empty() || self.inflate.is_some() {
                    break;
                }
                self.feed_plain(&rest, out);
                break;
            }
            match self.feed_plain(bytes, out) {
                Some(end) if end < bytes.len() => bytes = &bytes[end..],
                _ => break,
            }
        }
        if self.raw.len() > MAX_RECORDED {
            let cut = self.raw.len() - MAX_RECORDED / 2;
            self.raw.drain(..cut);
            self.expect_cursor = self.expect_cursor.saturating_sub(cut);
            for rs in &mut self.rules {
                rs.cursor = rs.cursor.saturating_sub(cut);
            }
        }
    }

    /// Whether `pattern` was received since connect (within the last [`MAX_RECORDED`] bytes).
    fn seen_from_start(&self, pattern: &[u8]) -> bool {
        find(&self.raw, pattern).is_some()
    }

    /// Fires byte-pattern rules on everything received since each rule last looked.
    fn scan_rules(&mut self, out: &mut Vec<(u64, Vec<u8>)>) {
        for rs in &mut self.rules {
            if is_command(&rs.rule.pattern) {
                continue;
            }
            while !rs.spent {
                match find(&self.raw[rs.cursor..], &rs.rule.pattern) {
                    Some(at) => {
                        rs.cursor += at + rs.rule.pattern.len();
                        rs.spent = rs.rule.once;
                        out.push((rs.rule.after_ms, rs.rule.reply.clone()));
                    }
                    None => break,
                }
            }
        }
    }
}

fn is_command(p: &[u8]) -> bool {
    p.len() == 3 && p[0] == IAC && matches!(p[1], WILL | WONT | DO | DONT)
}

/// First index of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > hay.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Conn {
    async fn write(&self, bytes: &[u8], compress: bool) -> std::io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.state.lock().expect("state").note_outgoing(bytes);
        let mut w = self.writer.lock().await;
        let w = &mut *w;
        match (&mut w.deflate, compress) {
            (Some(z), true) => {
                z.write_all(bytes)?;
                z.flush()?;
                let out = std::mem::take(z.get_mut());
                w.half.write_all(&out).await
            }
            _ => w.half.write_all(bytes).await,
        }
    }

    async fn send_replies(self: &Arc<Self>, replies: Vec<(u64, Vec<u8>)>) -> std::io::Result<()> {
        for (after_ms, bytes) in replies {
            if after_ms == 0 {
                self.write(&bytes, true).await?;
            } else {
                let me = self.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(after_ms)).await;
                    let _ = me.write(&bytes, true).await;
                });
            }
        }
        Ok(())
    }
}

async fn handle(sock: TcpStream, scenario: Arc<Scenario>, capture: Option<(Captured, usize)>) {
    let _ = sock.set_nodelay(true);
    let (mut read, write) = sock.into_split();
    let conn = Arc::new(Conn {
        state: Mutex::new(State {
            raw: Vec::new(),
            expect_cursor: 0,
            rules: Vec::new(),
            policy: Policy {
                kind: PolicyKind::Refuse,
                after_ms: 0,
            },
            us: [Q::No; 256],
            him: [Q::No; 256],
            parse: Parse::Data,
            inflate: None,
            closed: false,
            capture,
        }),
        writer: tokio::sync::Mutex::new(Writer {
            half: write,
            deflate: None,
        }),
        notify: Notify::new(),
    });
    // Policies and rules at the top of the script apply before the first byte is read.
    let lead = scenario
        .steps
        .iter()
        .take_while(|s| matches!(s, Step::Policy(_) | Step::On(_)))
        .count();
    {
        let mut st = conn.state.lock().expect("state");
        for step in &scenario.steps[..lead] {
            match step {
                Step::Policy(p) => st.policy = *p,
                Step::On(rule) => st.rules.push(RuleState {
                    rule: rule.clone(),
                    cursor: 0,
                    spent: false,
                }),
                _ => {}
            }
        }
    }
    let reader_conn = conn.clone();
    let reader = tokio::spawn(async move {
        let conn = reader_conn;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let mut replies = Vec::new();
            conn.state
                .lock()
                .expect("state")
                .feed(&buf[..n], &mut replies);
            conn.notify.notify_waiters();
            if conn.send_replies(replies).await.is_err() {
                break;
            }
        }
        conn.state.lock().expect("state").closed = true;
        conn.notify.notify_waiters();
    });
    let closed_by_script = run_steps(&conn, &scenario.steps[lead..])
        .await
        .unwrap_or(true);
    if closed_by_script {
        reader.abort();
        let mut w = conn.writer.lock().await;
        let _ = w.half.shutdown().await;
    } else {
        let _ = reader.await;
    }
}

/// Runs steps; `Ok(true)` when the script closed the connection, `Err` when the client left.
fn run_steps<'a>(
    conn: &'a Arc<Conn>,
    steps: &'a [Step],
) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<bool>> + Send + 'a>> {
    Box::pin(async move {
        for step in steps {
            match step {
                Step::Policy(p) => conn.state.lock().expect("state").policy = *p,
                Step::Send(b) => conn.write(b, true).await?,
                Step::Raw(b) => conn.write(b, false).await?,
                Step::Mccp2 => {
                    conn.write(&[IAC, SB, MCCP2, IAC, SE], true).await?;
                    let mut w = conn.writer.lock().await;
                    if w.deflate.is_none() {
                        w.deflate = Some(ZlibEncoder::new(Vec::new(), Compression::default()));
                    }
                }
                Step::Wait(ms) => tokio::time::sleep(Duration::from_millis(*ms)).await,
                Step::Expect { pattern, within_ms } | Step::Await { pattern, within_ms } => {
                    let from_start = matches!(step, Step::Await { .. });
                    let deadline = Instant::now() + Duration::from_millis(*within_ms);
                    loop {
                        let notified = conn.notify.notified();
                        {
                            let mut st = conn.state.lock().expect("state");
                            if from_start {
                                if st.seen_from_start(pattern) {
                                    break;
                                }
                            } else if let Some(at) = find(&st.raw[st.expect_cursor..], pattern) {
                                st.expect_cursor += at + pattern.len();
                                break;
                            }
                            if st.closed {
                                return Err(std::io::ErrorKind::UnexpectedEof.into());
                            }
                        }
                        if tokio::time::timeout_at(deadline, notified).await.is_err() {
                            break;
                        }
                    }
                }
                Step::On(rule) => {
                    let mut replies = Vec::new();
                    {
                        let mut st = conn.state.lock().expect("state");
                        let cursor = st.raw.len();
                        st.rules.push(RuleState {
                            rule: rule.clone(),
                            cursor,
                            spent: false,
                        });
                        st.scan_rules(&mut replies);
                    }
                    conn.send_replies(replies).await?;
                }
                Step::Repeat { count, body } => {
                    let mut i = 0u64;
                    while count.is_none_or(|c| i < c) {
                        if conn.state.lock().expect("state").closed {
                            return Err(std::io::ErrorKind::UnexpectedEof.into());
                        }
                        if run_steps(conn, body).await? {
                            return Ok(true);
                        }
                        i += 1;
                        // A `repeat forever` of instant steps must still yield.
                        tokio::task::yield_now().await;
                    }
                }
                Step::Close => return Ok(true),
            }
        }
        Ok(false)
    })
}
