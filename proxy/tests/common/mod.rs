//! Shared helpers for the proxy integration tests: a server on 127.0.0.1:0, a websocket
//! client, a raw HTTP GET, and control-message readers. Loopback only.
#![allow(dead_code)]

use futures_util::{SinkExt, StreamExt};
use iacscope::serve::{serve, AppState, Config};
use iacscope_shared::config::ScanConfig;
use iacscope_shared::scan::Scanner;
use iacscope_shared::time::Timestamp;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Every wait in these tests is bounded by this (paused-time tests keep their timers below it).
pub const LIMIT: Duration = Duration::from_secs(30);

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A running proxy.
pub struct Server {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    stop: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<()>,
}

impl Server {
    /// Triggers shutdown.
    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// A test config: private targets allowed, no web app, a fresh database directory.
pub fn config() -> Config {
    Config {
        allow_private: true,
        static_dir: PathBuf::from("/nonexistent/iacscope-test-dist"),
        data_dir: temp_data_dir(),
        ..Config::default()
    }
}

/// A fresh, empty directory for a test database (under the system temp directory).
pub fn temp_data_dir() -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("iacscope-test-db-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A stored plain (`tls=0`) scan of `host:port` with an empty record and no transcript, as
/// tests put one straight into the store.
pub fn plain_row(
    id: &str,
    host: &str,
    port: u16,
    fingerprint: &str,
    created: i64,
) -> iacscope::directory::db::NewScan {
    iacscope::directory::db::NewScan {
        id: id.into(),
        host: host.into(),
        port,
        ip: "127.0.0.1".into(),
        fingerprint: fingerprint.into(),
        created,
        record_json: "{}".into(),
        transcript_text: String::new(),
        config: "scan-type=quick encoding=ascii ttype=VT100 tls=0".into(),
        mssp_players: None,
        mssp_uptime: None,
        mssp_name: None,
        source: iacscope::directory::db::SOURCE_LIVE.into(),
        complete: true,
        compat: iacscope::directory::db::COMPAT_VERSION.into(),
    }
}

/// A plain HTTP/1.1 POST of a JSON body; returns (status, body).
pub async fn http_post(server: SocketAddr, path: &str, body: &str) -> (u16, Vec<u8>) {
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (status, _, body) = http_exchange(server, &req).await;
    (status, body)
}

/// Sends one raw HTTP/1.1 request (with `Connection: close`) and reads the whole reply;
/// returns (status, headers in lower case, body).
async fn http_exchange(server: SocketAddr, req: &str) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(server).await.expect("connect");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(LIMIT, s.read_to_end(&mut buf))
        .await
        .expect("response in time")
        .expect("read");
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&buf[..split]).to_ascii_lowercase();
    let status = head[9..12].parse().expect("status");
    (status, head, buf[split + 4..].to_vec())
}

pub async fn start(cfg: Config) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let state = AppState::new(cfg).expect("state");
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, state.clone(), async {
        let _ = rx.await;
    }));
    Server {
        addr,
        state,
        stop: Some(tx),
        task,
    }
}

/// Percent-encodes a query value.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub async fn open_ws(server: SocketAddr, query: &str) -> Ws {
    let url = format!("ws://{server}/ws?{query}");
    let (ws, _) = tokio::time::timeout(LIMIT, tokio_tungstenite::connect_async(url))
        .await
        .expect("handshake in time")
        .expect("handshake");
    ws
}

/// Connects to `host:port` (plain TCP) through the proxy.
pub async fn ws_to(server: SocketAddr, host: &str, port: u16) -> Ws {
    open_ws(server, &format!("host={}&port={port}", enc(host))).await
}

/// The next message.
pub async fn next(ws: &mut Ws) -> Option<Message> {
    tokio::time::timeout(LIMIT, ws.next())
        .await
        .expect("message in time")
        .map(|r| r.expect("websocket ok"))
}

/// The next message, which must be a JSON text frame.
pub async fn control(ws: &mut Ws) -> Value {
    match next(ws).await {
        Some(Message::Text(t)) => serde_json::from_str(&t).expect("json"),
        other => panic!("expected a control message, got {other:?}"),
    }
}

/// The next message must be a close frame; returns it.
pub async fn close_frame(ws: &mut Ws) -> Option<CloseFrame> {
    match next(ws).await {
        Some(Message::Close(f)) => f,
        other => panic!("expected a close frame, got {other:?}"),
    }
}

/// Expects `connected`, returns it.
pub async fn connected(ws: &mut Ws) -> Value {
    let c = control(ws).await;
    assert_eq!(c["type"], "connected", "{c}");
    c
}

/// Expects `error` with `code`, then a close frame.
pub async fn expect_error(ws: &mut Ws, code: &str) -> Value {
    let c = control(ws).await;
    assert_eq!(c["type"], "error", "{c}");
    assert_eq!(c["code"], code, "{c}");
    assert!(c["message"].as_str().is_some_and(|m| !m.is_empty()));
    close_frame(ws).await;
    c
}

/// Collects binary payload until `n` bytes arrived.
pub async fn read_binary(ws: &mut Ws, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        match next(ws).await {
            Some(Message::Binary(b)) => out.extend_from_slice(&b),
            other => panic!("expected data, got {other:?} after {} bytes", out.len()),
        }
    }
    out
}

pub async fn send(ws: &mut Ws, bytes: &[u8]) {
    ws.send(Message::Binary(bytes.to_vec().into()))
        .await
        .expect("send");
}

/// A listener standing in for a telnet server.
pub async fn upstream() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    (l, port)
}

pub async fn accept(l: &TcpListener) -> TcpStream {
    tokio::time::timeout(LIMIT, l.accept())
        .await
        .expect("accept in time")
        .expect("accept")
        .0
}

/// A session through the proxy to a fresh upstream listener: the websocket (past its
/// `connected` message) and the server side of the connection.
pub async fn session_to_upstream(server: SocketAddr) -> (Ws, TcpStream) {
    let (l, port) = upstream().await;
    let mut ws = ws_to(server, "127.0.0.1", port).await;
    let up = accept(&l).await;
    connected(&mut ws).await;
    (ws, up)
}

/// Echo server: returns its port.
pub async fn echo_server() -> u16 {
    let (l, port) = upstream().await;
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    port
}

/// A plain HTTP/1.1 GET; returns (status, headers in lower case, body).
pub async fn http_get(server: SocketAddr, path: &str, extra: &str) -> (u16, String, Vec<u8>) {
    let req = format!("GET {path} HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\n{extra}\r\n");
    http_exchange(server, &req).await
}

/// The value of one metric line (exact name with labels).
pub async fn metric(server: SocketAddr, name: &str) -> f64 {
    let (_, _, body) = http_get(server, "/metrics", "").await;
    let text = String::from_utf8(body).expect("utf8");
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .map(|v| v.parse().expect("number"))
        .unwrap_or(0.0)
}

/// Drives a scan over the proxy's websocket as the web app does (engine in the client, time
/// from the client's clock). Returns the scanner and the proxy's session id.
pub async fn browser_scan(server: std::net::SocketAddr, port: u16) -> (Scanner, String) {
    let mut ws = ws_to(server, "127.0.0.1", port).await;
    let hello = connected(&mut ws).await;
    let session = hello["session"].as_str().expect("session id").to_owned();
    let start = tokio::time::Instant::now();
    let now = move || Timestamp(start.elapsed().as_micros() as u64);
    let mut s = Scanner::new(ScanConfig::default(), Timestamp(0));
    let mut closed = false;
    loop {
        while let Some(b) = s.poll_transmit() {
            if !closed {
                send(&mut ws, &b).await;
            }
        }
        while s.poll_event().is_some() {}
        if s.is_done() {
            break;
        }
        if let Some(t) = s.poll_timeout() {
            if t <= now() {
                s.handle_timeout(now());
                continue;
            }
        }
        let deadline = start + Duration::from_micros(s.poll_timeout().map_or(30_000_000, |t| t.0));
        if closed {
            tokio::time::sleep_until(deadline).await;
            s.handle_timeout(now());
            continue;
        }
        tokio::select! {
            m = ws.next() => match m {
                Some(Ok(Message::Binary(b))) => s.handle_input(now(), &b),
                Some(Ok(Message::Text(t))) => {
                    let c: Value = serde_json::from_str(&t).expect("json");
                    assert_eq!(c["type"], "closed", "{c}");
                    // The proxy closes the transcript before it sends `closed`.
                    closed = true;
                    s.handle_eof(now());
                }
                _ => {
                    closed = true;
                    s.handle_eof(now());
                }
            },
            () = tokio::time::sleep_until(deadline) => s.handle_timeout(now()),
        }
    }
    (s, session)
}

/// A TLS acceptor with a fresh self-signed certificate for `localhost` and `127.0.0.1`, and
/// that certificate's PEM (to trust it with `Config::tls_roots`).
pub fn self_signed_acceptor() -> (tokio_rustls::TlsAcceptor, String) {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("cert");
    let cert = CertificateDer::from(ck.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .expect("server config");
    (
        tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        ck.cert.pem(),
    )
}
