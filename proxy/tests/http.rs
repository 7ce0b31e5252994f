//! The HTTP edge against hostile clients: connection budgets (global and per address),
//! request deadlines (a body that drips), websocket origins under DNS rebinding, absolute
//! URLs that a forged `Host` cannot steer, and paths no file can have. Loopback only; each
//! test fails on a proxy without the bound it checks.

mod common;

use common::*;
use iacscope::serve::Config;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A TCP connection to `server` from the loopback address `from` (127.x.y.z: each is a
/// client address of its own).
async fn connect_from(from: [u8; 4], server: SocketAddr) -> TcpStream {
    let sock = TcpSocket::new_v4().expect("socket");
    sock.bind(SocketAddr::from((from, 0))).expect("bind");
    tokio::time::timeout(LIMIT, sock.connect(server))
        .await
        .expect("connect in time")
        .expect("connect")
}

/// Everything the server sends until it closes (bounded by [`LIMIT`]).
async fn read_all(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    tokio::time::timeout(LIMIT, s.read_to_end(&mut buf))
        .await
        .expect("server answers and closes in time")
        .expect("read");
    String::from_utf8_lossy(&buf).into_owned()
}

/// Waits until the server counts `n` open connections (a closed socket is noticed by the
/// connection task, which then gives its place back).
async fn until_open(server: &Server, n: usize) {
    let deadline = tokio::time::Instant::now() + LIMIT;
    while server.state.connections.open() != n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} open, not {n}",
            server.state.connections.open()
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Idle connections from one address take only that address's share; past the global
/// budget everyone is refused, with a sentence naming the limit; a place comes back when a
/// connection goes.
#[tokio::test]
async fn connections_are_budgeted_per_address_and_in_all() {
    let server = start(Config {
        max_connections: 5,
        max_connections_per_ip: 3,
        ..config()
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(connect_from([127, 0, 0, 11], server.addr).await);
    }
    let mut fourth = connect_from([127, 0, 0, 11], server.addr).await;
    let reply = read_all(&mut fourth).await;
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    assert!(reply.contains("max_connections_per_ip:"), "{reply}");
    until_open(&server, 3).await;
    // Another address still gets in, up to the global budget.
    for _ in 0..2 {
        idle.push(connect_from([127, 0, 0, 12], server.addr).await);
    }
    until_open(&server, 5).await;
    let mut sixth = connect_from([127, 0, 0, 13], server.addr).await;
    let reply = read_all(&mut sixth).await;
    assert!(reply.contains("max_connections:"), "{reply}");
    // One idle connection goes: a newcomer is served.
    drop(idle.remove(0));
    until_open(&server, 4).await;
    let mut s = connect_from([127, 0, 0, 13], server.addr).await;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let reply = read_all(&mut s).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert_eq!(
        metric(
            server.addr,
            "iacscope_refusals_total{reason=\"connections_per_ip\"}"
        )
        .await,
        1.0
    );
}

/// A POST whose body drips is answered `408` when the request deadline runs out, and the
/// connection closes; the server goes on serving.
#[tokio::test]
async fn a_body_that_drips_is_cut_off() {
    let server = start(Config {
        request_timeout: Duration::from_millis(500),
        ..config()
    })
    .await;
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    s.write_all(
        b"POST /api/sessions/00000000000000000000000000000000/save HTTP/1.1\r\nHost: x\r\n\
          Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"scan",
    )
    .await
    .expect("write");
    // One more byte now and then, each well inside any per-read timeout.
    let drip = async {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if s.write_all(b" ").await.is_err() {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(3), drip).await;
    let reply = read_all(&mut s).await;
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(reply.contains("request_timeout:"), "{reply}");
    let (status, _, _) = http_get(server.addr, "/healthz", "").await;
    assert_eq!(status, 200);
}

fn ws_request(
    server: SocketAddr,
    port: u16,
    origin: &str,
    host: Option<&str>,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let url = format!("ws://{server}/ws?host=127.0.0.1&port={port}");
    let mut req = url.into_client_request().expect("request");
    req.headers_mut()
        .insert("origin", origin.parse().expect("header"));
    if let Some(h) = host {
        req.headers_mut().insert("host", h.parse().expect("header"));
    }
    req
}

/// A page on a name that re-resolves to this server (DNS rebinding) sends its own name as
/// both `Origin` and `Host`: they agree, and it is still refused, with the reason; a
/// loopback page on the listening port is this server's own.
#[tokio::test]
async fn a_rebinding_page_cannot_open_the_websocket() {
    let port = echo_server().await;
    let server = start(config()).await;
    let p = server.addr.port();
    let rebound = format!("attacker.example:{p}");
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_request(
        server.addr,
        port,
        &format!("http://{rebound}"),
        Some(&rebound),
    ))
    .await
    .expect("upgraded, to be told why");
    let err = expect_error(&mut ws, "forbidden_origin").await;
    let why = err["message"].as_str().expect("message");
    assert!(why.contains("--allowed-origin"), "{why}");
    for ok in [
        format!("http://127.0.0.1:{p}"),
        format!("http://localhost:{p}"),
    ] {
        let (mut ws, _) =
            tokio_tungstenite::connect_async(ws_request(server.addr, port, &ok, None))
                .await
                .expect("own origin");
        connected(&mut ws).await;
    }
    // Another local port is another application.
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_request(
        server.addr,
        port,
        &format!("http://127.0.0.1:{}", p.wrapping_add(1)),
        None,
    ))
    .await
    .expect("upgraded");
    expect_error(&mut ws, "forbidden_origin").await;
}

/// Absolute URLs (oEmbed, og:url) come from configuration: a forged `Host` does not get its
/// name into them.
#[tokio::test]
async fn a_forged_host_does_not_steer_absolute_urls() {
    let server = start(config()).await;
    let id = "b".repeat(32);
    let row = plain_row(&id, "mud.example", 4000, "0123456789abcdef", 1_700_000_000);
    assert!(server.state.db.insert(&row).expect("insert"));
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    let page = format!("http://evil.example/s/{id}");
    s.write_all(
        format!(
            "GET /oembed?url={}&format=json HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
            enc(&page)
        )
        .as_bytes(),
    )
    .await
    .expect("write");
    let reply = read_all(&mut s).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(!reply.contains("evil.example"), "{reply}");
    assert!(
        reply.contains(&format!("http://{}/embed/{id}", server.addr)),
        "{reply}"
    );
}

/// A path segment longer than any file name gets the app's page (a client route), not a
/// server error.
#[tokio::test]
async fn an_overlong_path_gets_the_app() {
    let dir = temp_data_dir().with_extension("web");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("index.html"), "<!doctype html><title>app</title>").expect("index");
    let server = start(Config {
        static_dir: dir,
        ..config()
    })
    .await;
    for path in [
        format!("/{}", "a".repeat(300)),
        format!("/{}", "c".repeat(254)),
        format!("/servers/{}/23", "b".repeat(1000)),
        "/a".repeat(2100),
        "/x%00y".into(),
    ] {
        for extra in ["", "Accept-Encoding: gzip\r\n"] {
            let (status, _, body) = http_get(server.addr, &path, extra).await;
            assert_eq!(status, 200, "{path} {extra}");
            if extra.is_empty() {
                let body = String::from_utf8_lossy(&body).into_owned();
                assert!(body.contains("<title>app</title>"), "{body}");
            }
        }
    }
}
