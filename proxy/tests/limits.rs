//! Every limit, through the real server: concurrency (global, per client, per target),
//! rate, timeouts (connect, idle, duration, handshake), bytes each way, message and frame
//! size, and fairness at a shared target (a per-client share, idle sessions giving way).
//! Time-dependent tests run on paused time, with every other timer far away.

mod common;

use common::*;
use futures_util::SinkExt;
use iacscope::serve::Config;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

const FAR: Duration = Duration::from_secs(100 * 3600);

/// A config whose timers are all far away, so paused time only reaches the one under test.
fn quiet() -> Config {
    Config {
        connect_timeout: FAR,
        idle_timeout: FAR,
        max_session_duration: FAR,
        handshake_timeout: FAR,
        max_connection_age: FAR,
        ..config()
    }
}

async fn expect_closed(ws: &mut Ws, code: &str, close: u16) -> serde_json::Value {
    let c = control(ws).await;
    assert_eq!(c["type"], "closed", "{c}");
    assert_eq!(c["by"], "proxy", "{c}");
    assert_eq!(c["code"], code, "{c}");
    let frame = close_frame(ws).await.expect("close frame");
    assert_eq!(u16::from(frame.code), close);
    c
}

/// A new session to 127.0.0.1:`port` is refused as over a limit, with `phrase` in the
/// sentence that says which.
async fn expect_limited(server: std::net::SocketAddr, port: u16, phrase: &str) {
    let mut ws = ws_to(server, "127.0.0.1", port).await;
    let e = expect_error(&mut ws, "limit_reached").await;
    assert!(
        e["message"].as_str().is_some_and(|m| m.contains(phrase)),
        "{e}"
    );
}

#[tokio::test]
async fn global_session_limit() {
    let port = echo_server().await;
    let server = start(Config {
        max_sessions: 1,
        ..config()
    })
    .await;
    let mut a = ws_to(server.addr, "127.0.0.1", port).await;
    connected(&mut a).await;
    expect_limited(server.addr, port, "session limit").await;
    // The permit lives as long as the session task: after it ends, there is room again.
    a.close(None).await.expect("close");
    while next(&mut a).await.is_some() {}
    tokio::time::timeout(LIMIT, async {
        while server.state.limits.active() > 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("session ends");
    let mut c = ws_to(server.addr, "127.0.0.1", port).await;
    connected(&mut c).await;
    assert_eq!(
        metric(
            server.addr,
            "iacscope_refusals_total{reason=\"limit_global\"}"
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn per_client_concurrency_and_forwarded_for() {
    let port = echo_server().await;
    let server = start(Config {
        max_sessions_per_ip: 1,
        trusted_proxies: vec!["127.0.0.1".parse().expect("net")],
        ..config()
    })
    .await;
    let mut a = ws_to(server.addr, "127.0.0.1", port).await;
    connected(&mut a).await;
    expect_limited(server.addr, port, "your address").await;
    // Behind a trusted proxy, the forwarded client is counted instead.
    let with_xff = |xff: &str| {
        let mut req = format!("ws://{}/ws?host=127.0.0.1&port={port}", server.addr)
            .into_client_request()
            .expect("req");
        req.headers_mut()
            .insert("x-forwarded-for", xff.parse().expect("header"));
        req
    };
    let (mut c, _) = tokio_tungstenite::connect_async(with_xff("198.51.100.1"))
        .await
        .expect("ws");
    connected(&mut c).await;
    let (mut d, _) = tokio_tungstenite::connect_async(with_xff("203.0.113.5, 198.51.100.1"))
        .await
        .expect("ws");
    expect_error(&mut d, "limit_reached").await;
    drop(a);
    assert!(
        metric(
            server.addr,
            "iacscope_refusals_total{reason=\"limit_per_client\"}"
        )
        .await
            >= 2.0
    );
}

#[tokio::test]
async fn untrusted_forwarded_for_is_ignored() {
    let port = echo_server().await;
    let server = start(Config {
        max_sessions_per_ip: 1,
        ..config()
    })
    .await;
    let mut a = ws_to(server.addr, "127.0.0.1", port).await;
    connected(&mut a).await;
    let mut req = format!("ws://{}/ws?host=127.0.0.1&port={port}", server.addr)
        .into_client_request()
        .expect("req");
    req.headers_mut()
        .insert("x-forwarded-for", "198.51.100.9".parse().expect("header"));
    let (mut b, _) = tokio_tungstenite::connect_async(req).await.expect("ws");
    expect_error(&mut b, "limit_reached").await;
}

#[tokio::test]
async fn per_client_rate() {
    let port = echo_server().await;
    let server = start(Config {
        max_new_sessions_per_ip_per_minute: 3,
        ..config()
    })
    .await;
    for _ in 0..3 {
        let mut ws = ws_to(server.addr, "127.0.0.1", port).await;
        connected(&mut ws).await;
    }
    expect_limited(server.addr, port, "minute").await;
    assert_eq!(
        metric(
            server.addr,
            "iacscope_refusals_total{reason=\"limit_rate\"}"
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn per_target_concurrency() {
    let port = echo_server().await;
    let (l2, port2) = {
        let l = tokio::net::TcpListener::bind("127.0.0.2:0")
            .await
            .expect("bind");
        let p = l.local_addr().expect("addr").port();
        (l, p)
    };
    let server = start(Config {
        max_sessions_per_target: 1,
        ..config()
    })
    .await;
    let mut a = ws_to(server.addr, "127.0.0.1", port).await;
    connected(&mut a).await;
    expect_limited(server.addr, port, "this server").await;
    // Another target is unaffected.
    let mut c = ws_to(server.addr, "127.0.0.2", port2).await;
    let _up = accept(&l2).await;
    connected(&mut c).await;
    // The slot comes back when the session ends.
    a.close(None).await.expect("close");
    while next(&mut a).await.is_some() {}
    tokio::time::timeout(LIMIT, async {
        loop {
            let mut d = ws_to(server.addr, "127.0.0.1", port).await;
            if control(&mut d).await["type"] == "connected" {
                break;
            }
        }
    })
    .await
    .expect("slot released");
}

#[tokio::test(start_paused = true)]
async fn connect_timeout_covers_a_stalled_tls_handshake() {
    // Accepts TCP, never answers the ClientHello.
    let (l, port) = upstream().await;
    let server = start(Config {
        connect_timeout: Duration::from_secs(10),
        ..quiet()
    })
    .await;
    let mut ws = open_ws(server.addr, &format!("host=127.0.0.1&port={port}&tls=1")).await;
    let _held = accept(&l).await;
    let e = expect_error(&mut ws, "timeout").await;
    assert!(
        e["message"].as_str().is_some_and(|m| m.contains("10 s")),
        "{e}"
    );
}

#[tokio::test(start_paused = true)]
async fn idle_timeout() {
    let port = echo_server().await;
    let server = start(Config {
        idle_timeout: Duration::from_secs(20),
        ..quiet()
    })
    .await;
    let mut ws = ws_to(server.addr, "127.0.0.1", port).await;
    connected(&mut ws).await;
    let t0 = tokio::time::Instant::now();
    send(&mut ws, b"x").await;
    assert_eq!(read_binary(&mut ws, 1).await, b"x");
    let c = expect_closed(&mut ws, "idle_timeout", 1001).await;
    assert!(t0.elapsed() >= Duration::from_secs(20), "{c}");
}

#[tokio::test(start_paused = true)]
async fn session_duration_limit() {
    let port = echo_server().await;
    let server = start(Config {
        max_session_duration: Duration::from_secs(25),
        ..quiet()
    })
    .await;
    let mut ws = ws_to(server.addr, "127.0.0.1", port).await;
    connected(&mut ws).await;
    expect_closed(&mut ws, "duration_limit", 1001).await;
}

#[tokio::test(start_paused = true)]
async fn handshake_timeout_drops_slow_clients() {
    let server = start(Config {
        handshake_timeout: Duration::from_secs(5),
        ..quiet()
    })
    .await;
    let mut s = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    s.write_all(b"GET /ws?host=127.0.0.1 HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let mut buf = Vec::new();
    let t0 = tokio::time::Instant::now();
    tokio::time::timeout(LIMIT, s.read_to_end(&mut buf))
        .await
        .expect("closed in time")
        .expect("read");
    assert!(t0.elapsed() >= Duration::from_secs(5));
    let text = String::from_utf8_lossy(&buf);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
}

#[tokio::test]
async fn bytes_up_limit() {
    let (l, port) = upstream().await;
    let server = start(Config {
        max_bytes_up: 1000,
        ..config()
    })
    .await;
    let mut ws = ws_to(server.addr, "127.0.0.1", port).await;
    let mut up = accept(&l).await;
    connected(&mut ws).await;
    // A server that speaks first: the page's data goes through without waiting.
    up.write_all(b"Login: ").await.expect("greet");
    assert_eq!(read_binary(&mut ws, 7).await, b"Login: ");
    send(&mut ws, &[1; 600]).await;
    send(&mut ws, &[2; 600]).await;
    let c = expect_closed(&mut ws, "bytes_limit", 1008).await;
    assert_eq!(c["bytes_up"], 600);
    let mut got = Vec::new();
    up.read_to_end(&mut got).await.expect("read");
    assert_eq!(got, vec![1; 600], "nothing past the limit was relayed");
}

#[tokio::test]
async fn bytes_down_limit() {
    let (l, port) = upstream().await;
    let server = start(Config {
        max_bytes_down: 1000,
        ..config()
    })
    .await;
    let mut ws = ws_to(server.addr, "127.0.0.1", port).await;
    let mut up = accept(&l).await;
    connected(&mut ws).await;
    up.write_all(&[3; 800]).await.expect("write");
    assert_eq!(read_binary(&mut ws, 800).await, vec![3; 800]);
    up.write_all(&[4; 800]).await.expect("write");
    let c = expect_closed(&mut ws, "bytes_limit", 1008).await;
    assert_eq!(c["bytes_down"], 800);
}

#[tokio::test]
async fn message_size_limit() {
    let port = echo_server().await;
    let server = start(Config {
        max_message_size: 1024,
        max_frame_size: 1024,
        ..config()
    })
    .await;
    let mut ws = ws_to(server.addr, "127.0.0.1", port).await;
    connected(&mut ws).await;
    send(&mut ws, &[5; 1024]).await;
    assert_eq!(read_binary(&mut ws, 1024).await, vec![5; 1024]);
    send(&mut ws, &[6; 1025]).await;
    expect_closed(&mut ws, "message_too_big", 1009).await;
}

#[tokio::test]
async fn frame_size_limit() {
    let port = echo_server().await;
    let server = start(Config {
        max_message_size: 4096,
        max_frame_size: 512,
        ..config()
    })
    .await;
    let url = format!("ws://{}/ws?host=127.0.0.1&port={port}", server.addr);
    // A client that splits messages into 256-byte frames stays under the frame limit.
    let (mut small, _) = tokio_tungstenite::connect_async_with_config(
        url.clone(),
        Some(WebSocketConfig::default().max_frame_size(Some(256))),
        false,
    )
    .await
    .expect("ws");
    connected(&mut small).await;
    let mut ws = open_ws(server.addr, &format!("host=127.0.0.1&port={port}")).await;
    connected(&mut ws).await;
    ws.send(Message::Binary(vec![7u8; 513].into()))
        .await
        .expect("send");
    expect_closed(&mut ws, "message_too_big", 1009).await;
}

/// A websocket to 127.0.0.1:`port` from `client`, as a trusted reverse proxy forwards it.
async fn ws_from(server: std::net::SocketAddr, client: &str, port: u16) -> Ws {
    let mut req = format!("ws://{server}/ws?host=127.0.0.1&port={port}")
        .into_client_request()
        .expect("req");
    req.headers_mut()
        .insert("x-forwarded-for", client.parse().expect("header"));
    let (ws, _) = tokio::time::timeout(LIMIT, tokio_tungstenite::connect_async(req))
        .await
        .expect("handshake in time")
        .expect("handshake");
    ws
}

/// Hardening #8: one client cannot hold more than its share of one target's slots (a
/// quarter of `max_sessions_per_target` by default), and is told which limit it hit.
#[tokio::test]
async fn one_client_holds_only_its_share_of_a_target() {
    let port = echo_server().await;
    let server = start(Config {
        max_sessions_per_target: 8,
        trusted_proxies: vec!["127.0.0.1".parse().expect("net")],
        ..config()
    })
    .await;
    let mut a1 = ws_from(server.addr, "198.51.100.1", port).await;
    connected(&mut a1).await;
    let mut a2 = ws_from(server.addr, "198.51.100.1", port).await;
    connected(&mut a2).await;
    let mut a3 = ws_from(server.addr, "198.51.100.1", port).await;
    let e = expect_error(&mut a3, "limit_reached").await;
    let m = e["message"].as_str().expect("message");
    assert!(m.contains("your address already holds its share"), "{e}");
    assert!(m.contains("close one of them first"), "{e}");
    // Others still get in.
    let mut b = ws_from(server.addr, "198.51.100.2", port).await;
    connected(&mut b).await;
    assert_eq!(
        metric(
            server.addr,
            "iacscope_refusals_total{reason=\"limit_per_client_target\"}"
        )
        .await,
        1.0
    );
}

/// A proxy whose target (an echo server, 4 slots) is held by four client addresses
/// (198.51.100.1–4, through a trusted proxy), opened `spacing` apart; returns the proxy,
/// the echo server's port and the four sessions.
async fn full_target(spacing: Duration) -> (Server, u16, Vec<Ws>) {
    let port = echo_server().await;
    let server = start(Config {
        max_sessions_per_target: 4,
        trusted_proxies: vec!["127.0.0.1".parse().expect("net")],
        ..quiet()
    })
    .await;
    let mut held = Vec::new();
    for i in 1..=4 {
        let mut ws = ws_from(server.addr, &format!("198.51.100.{i}"), port).await;
        connected(&mut ws).await;
        held.push(ws);
        tokio::time::advance(spacing).await;
    }
    (server, port, held)
}

/// Hardening #8: when every slot of a target is held, the session idle the longest (at least
/// `yield_idle_after`, 60 s by default) is closed with `idle_yield` and the newcomer gets its
/// slot; sessions in use are left alone. Before anyone has been idle that long, the newcomer
/// is refused with a sentence that says what to do.
#[tokio::test(start_paused = true)]
async fn idle_sessions_give_way_to_a_newcomer() {
    let (server, port, mut held) = full_target(Duration::ZERO).await;
    let mut early = ws_from(server.addr, "198.51.100.5", port).await;
    let e = expect_error(&mut early, "limit_reached").await;
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("this server") && m.contains("try again")),
        "{e}"
    );
    tokio::time::advance(Duration::from_secs(90)).await;
    // Three are in use; the first has been idle for 90 s.
    for ws in &mut held[1..] {
        send(ws, b"x").await;
        assert_eq!(read_binary(ws, 1).await, b"x");
    }
    let mut newcomer = ws_from(server.addr, "198.51.100.5", port).await;
    connected(&mut newcomer).await;
    let c = expect_closed(&mut held[0], "idle_yield", 1001).await;
    assert!(
        c["reason"]
            .as_str()
            .is_some_and(|r| r.contains("90 s without traffic")
                && r.contains("another user is waiting for this server")),
        "{c}"
    );
    send(&mut newcomer, b"y").await;
    assert_eq!(read_binary(&mut newcomer, 1).await, b"y");
    for ws in &mut held[1..] {
        send(ws, b"z").await;
        assert_eq!(read_binary(ws, 1).await, b"z", "sessions in use stay");
    }
}

/// A keep-alive does not hold a full server for hours: with nobody idle long enough, the
/// session held the longest past `HELD_LONG` gives way to a newcomer.
#[tokio::test(start_paused = true)]
async fn long_held_sessions_give_way_despite_keepalives() {
    // One second apart: the first is the one held the longest.
    let (server, port, mut held) = full_target(Duration::from_secs(1)).await;
    // A NOP every 50 s from everyone: never idle for `yield_idle_after` (60 s).
    let keepalive = iacscope::relay::limits::HELD_LONG.as_secs() / 50 + 1;
    for _ in 0..keepalive {
        tokio::time::advance(Duration::from_secs(50)).await;
        for ws in &mut held {
            send(ws, b"\xff\xf1").await;
            assert_eq!(read_binary(ws, 2).await, b"\xff\xf1");
        }
    }
    let mut newcomer = ws_from(server.addr, "198.51.100.5", port).await;
    connected(&mut newcomer).await;
    let c = expect_closed(&mut held[0], "idle_yield", 1001).await;
    assert!(
        c["reason"]
            .as_str()
            .is_some_and(|r| r.contains("min: every session")),
        "{c}"
    );
}
