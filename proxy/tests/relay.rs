//! Relay behaviour: byte-exact both ways, close propagation, transcripts, TLS upstream,
//! metrics, static files, shutdown.

mod common;

use common::*;
use futures_util::SinkExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

fn pattern(n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n);
    v.extend(std::iter::repeat_n(0xFF, 300));
    v.extend(std::iter::repeat_n(0x00, 300));
    v.extend_from_slice(&[0xFF, 0xFA, 0x18, 0x00, 0xFF, 0xF0, 0x0D, 0x00, 0x0D, 0x0A]);
    let mut x: u32 = 12345;
    while v.len() < n {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        v.push((x >> 16) as u8);
    }
    v.truncate(n);
    v
}

#[tokio::test]
async fn relays_bytes_exactly_both_ways_at_once() {
    let server = start(config()).await;
    let (l, port) = upstream().await;
    let mut ws = ws_to(server.addr, "127.0.0.1", port).await;
    let mut up = accept(&l).await;
    let c = connected(&mut ws).await;
    assert_eq!(c["ip"], "127.0.0.1");
    assert_eq!(c["port"], port);
    assert!(c["tls"].is_null());
    assert_eq!(c["session"].as_str().map(str::len), Some(32));

    // 3 MiB each way, concurrently: a relay that serializes the directions deadlocks here.
    let down_data = pattern(3 << 20);
    let up_data: Vec<u8> = pattern(3 << 20).into_iter().rev().collect();
    let server_side = {
        let down_data = down_data.clone();
        let n = up_data.len();
        tokio::spawn(async move {
            let (mut r, mut w) = up.split();
            let write = async {
                w.write_all(&down_data).await.expect("upstream write");
            };
            let read = async {
                let mut got = vec![0; n];
                r.read_exact(&mut got).await.expect("upstream read");
                got
            };
            let ((), got) = tokio::join!(write, read);
            (got, up)
        })
    };
    let (mut tx, mut rx) = futures_util::StreamExt::split(ws);
    let sender = async {
        for chunk in up_data.chunks(60_000) {
            tx.send(Message::Binary(chunk.to_vec().into()))
                .await
                .expect("send");
        }
    };
    let receiver = async {
        let mut out = Vec::new();
        while out.len() < down_data.len() {
            match tokio::time::timeout(LIMIT, futures_util::StreamExt::next(&mut rx)).await {
                Ok(Some(Ok(Message::Binary(b)))) => out.extend_from_slice(&b),
                other => panic!("expected data, got {other:?}"),
            }
        }
        out
    };
    let ((), got_down) = tokio::join!(sender, receiver);
    assert!(got_down == down_data, "server-to-browser bytes differ");
    let (got_up, _up) = server_side.await.expect("join");
    assert!(got_up == up_data, "browser-to-server bytes differ");
}

#[tokio::test]
async fn server_close_reaches_the_browser_with_counts_and_transcript() {
    let server = start(config()).await;
    let (l, port) = upstream().await;
    let mut ws = ws_to(server.addr, "127.0.0.1", port).await;
    let mut up = accept(&l).await;
    let c = connected(&mut ws).await;
    let id = c["session"].as_str().expect("id").to_owned();
    send(&mut ws, &[0xFF, 0xFD, 0x18]).await;
    let mut got = [0u8; 3];
    up.read_exact(&mut got).await.expect("read");
    assert_eq!(got, [0xFF, 0xFD, 0x18]);
    up.write_all(b"Hi\xFF\xF9").await.expect("write");
    assert_eq!(read_binary(&mut ws, 4).await, b"Hi\xFF\xF9");
    drop(up);
    let closed = control(&mut ws).await;
    assert_eq!(closed["type"], "closed", "{closed}");
    assert_eq!(closed["by"], "server");
    assert_eq!(closed["bytes_up"], 3);
    assert_eq!(closed["bytes_down"], 4);
    assert!(closed["duration_ms"].is_u64());
    let frame = close_frame(&mut ws).await.expect("close frame");
    assert_eq!(u16::from(frame.code), 1000);

    let (status, _, body) =
        http_get(server.addr, &format!("/api/sessions/{id}/transcript"), "").await;
    assert_eq!(status, 200);
    let text = String::from_utf8(body).expect("utf8");
    let t = iacscope_shared::transcript::Transcript::parse(&text).expect("parses");
    assert_eq!(t.meta("host"), Some("127.0.0.1"));
    assert_eq!(t.meta("port"), Some(port.to_string().as_str()));
    assert_eq!(t.meta("ip"), Some("127.0.0.1"));
    assert_eq!(t.meta("tls"), Some("0"));
    use iacscope_shared::transcript::Entry;
    let kinds: Vec<String> = t
        .entries
        .iter()
        .map(|e| match e {
            Entry::Send(_, b) => format!("send {b:?}"),
            Entry::Recv(_, b) => format!("recv {b:?}"),
            Entry::Eof(_) => "eof".into(),
            Entry::Tick(_) => "tick".into(),
        })
        .collect();
    assert_eq!(
        kinds,
        ["send [255, 253, 24]", "recv [72, 105, 255, 249]", "eof"]
    );
    let (status, _, _) = http_get(server.addr, "/api/sessions/nope/transcript", "").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn browser_close_reaches_the_server() {
    let server = start(config()).await;
    let (mut ws, mut up) = session_to_upstream(server.addr).await;
    up.write_all(b"Login: ").await.expect("greet");
    assert_eq!(read_binary(&mut ws, 7).await, b"Login: ");
    send(&mut ws, b"bye").await;
    ws.close(None).await.expect("close");
    let mut got = Vec::new();
    tokio::time::timeout(LIMIT, up.read_to_end(&mut got))
        .await
        .expect("eof in time")
        .expect("read");
    assert_eq!(got, b"bye");
}

#[tokio::test]
async fn connect_errors_are_reported() {
    let server = start(config()).await;
    let (l, port) = upstream().await;
    drop(l);
    let mut ws = ws_to(server.addr, "127.0.0.1", port).await;
    expect_error(&mut ws, "connection_refused").await;
    let mut ws = open_ws(server.addr, "port=4000").await;
    expect_error(&mut ws, "bad_host").await;
    let mut ws = open_ws(server.addr, "host=127.0.0.1&port=99999").await;
    expect_error(&mut ws, "bad_port").await;
    let mut ws = open_ws(server.addr, "host=127.0.0.1&port=4000&tls=maybe").await;
    expect_error(&mut ws, "bad_request").await;
}

#[tokio::test]
async fn metrics_count_sessions_refusals_and_bytes() {
    let server = start(config()).await;
    let port = echo_server().await;
    let mut ws = ws_to(server.addr, "127.0.0.1", port).await;
    connected(&mut ws).await;
    assert_eq!(metric(server.addr, "iacscope_sessions_active").await, 1.0);
    send(&mut ws, &[7; 1000]).await;
    assert_eq!(read_binary(&mut ws, 1000).await, vec![7; 1000]);
    ws.close(None).await.expect("close");
    while next(&mut ws).await.is_some() {}
    let mut refused = ws_to(server.addr, "127.0.0.1", 22).await;
    expect_error(&mut refused, "refused_by_policy").await;
    // Session tasks finish just after their close frame; wait for the tracker to drain.
    tokio::time::timeout(LIMIT, async {
        while server.state.limits.active() > 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("sessions end");
    let m = |name: &'static str| metric(server.addr, name);
    assert_eq!(m("iacscope_sessions_total").await, 2.0);
    assert_eq!(m("iacscope_sessions_active").await, 0.0);
    assert_eq!(
        m("iacscope_refusals_total{reason=\"refused_by_policy\"}").await,
        1.0
    );
    assert_eq!(
        m("iacscope_bytes_relayed_total{direction=\"up\"}").await,
        1000.0
    );
    assert_eq!(
        m("iacscope_bytes_relayed_total{direction=\"down\"}").await,
        1000.0
    );
    assert_eq!(m("iacscope_connect_latency_seconds_count").await, 1.0);
    assert_eq!(
        m("iacscope_connect_latency_seconds_bucket{le=\"+Inf\"}").await,
        1.0
    );
}

#[tokio::test]
async fn shutdown_closes_sessions_with_a_reason() {
    let mut server = start(config()).await;
    let port = echo_server().await;
    let mut ws = ws_to(server.addr, "127.0.0.1", port).await;
    connected(&mut ws).await;
    server.stop();
    let closed = control(&mut ws).await;
    assert_eq!(closed["type"], "closed");
    assert_eq!(closed["by"], "proxy");
    assert_eq!(closed["code"], "shutdown");
    let frame = close_frame(&mut ws).await.expect("frame");
    assert_eq!(u16::from(frame.code), 1001);
    // Reading on sends our reply to the close frame, completing the handshake.
    while next(&mut ws).await.is_some() {}
    tokio::time::timeout(LIMIT, &mut server.task)
        .await
        .expect("server stops")
        .expect("join");
}

#[tokio::test]
async fn healthz_and_missing_web_app() {
    let server = start(config()).await;
    let (status, _, body) = http_get(server.addr, "/healthz", "").await;
    assert_eq!((status, body.as_slice()), (200, &b"ok\n"[..]));
    let (status, head, body) = http_get(server.addr, "/", "").await;
    assert_eq!(status, 503);
    assert!(head.contains("content-security-policy: default-src 'self'"));
    assert!(String::from_utf8_lossy(&body).contains("trunk build"));
}

#[tokio::test]
async fn static_files_have_csp_cache_headers_and_gzip() {
    let dir = std::env::temp_dir().join(format!("iacscope-dist-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let script = "import init from '/app-0123456789abcdef.js'; init();";
    std::fs::write(
        dir.join("index.html"),
        format!(
            "<!doctype html><script type=\"module\">{script}</script>{}",
            "x".repeat(500)
        ),
    )
    .expect("write");
    std::fs::write(
        dir.join("app-0123456789abcdef.js"),
        "export default function(){}".repeat(20),
    )
    .expect("write");
    std::fs::write(
        dir.join("app-0123456789abcdef_bg.wasm"),
        b"\0asm the module",
    )
    .expect("write");
    std::fs::write(
        dir.join("app-0123456789abcdef_bg.wasm.gz"),
        b"the precompressed bytes",
    )
    .expect("write");
    let server = start(iacscope::serve::Config {
        static_dir: dir.clone(),
        ..config()
    })
    .await;
    let (status, head, _) = http_get(server.addr, "/", "").await;
    assert_eq!(status, 200);
    assert!(head.contains("cache-control: no-cache"), "{head}");
    assert!(head.contains("'wasm-unsafe-eval' 'sha256-"), "{head}");
    assert!(head.contains("frame-ancestors 'none'"), "{head}");
    let (status, head, _) = http_get(
        server.addr,
        "/app-0123456789abcdef.js",
        "Accept-Encoding: gzip\r\n",
    )
    .await;
    assert_eq!(status, 200);
    assert!(head.contains("immutable"), "{head}");
    assert!(head.contains("content-encoding: gzip"), "{head}");
    // A file `cargo xtask` precompressed (`name.gz` beside it) is sent as it is on disk.
    let (status, head, body) = http_get(
        server.addr,
        "/app-0123456789abcdef_bg.wasm",
        "Accept-Encoding: gzip\r\n",
    )
    .await;
    assert_eq!(status, 200);
    assert!(head.contains("content-encoding: gzip"), "{head}");
    assert!(head.contains("content-type: application/wasm"), "{head}");
    assert_eq!(body, b"the precompressed bytes");
    assert_eq!(head.matches("vary: accept-encoding").count(), 1, "{head}");
    let (status, head, body) = http_get(server.addr, "/app-0123456789abcdef_bg.wasm", "").await;
    assert_eq!(status, 200);
    assert!(!head.contains("content-encoding"), "{head}");
    assert!(head.contains("vary: accept-encoding"), "{head}");
    assert_eq!(body, b"\0asm the module");
    // Client-side routes get the app.
    let (status, _, body) = http_get(server.addr, "/s/abc", "").await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains(script));
    let _ = std::fs::remove_dir_all(&dir);
}

mod tls {
    use super::*;

    /// A TLS echo server with a fresh self-signed certificate; returns its port and PEM.
    async fn tls_echo() -> (u16, String) {
        let (acceptor, pem) = self_signed_acceptor();
        let (l, port) = upstream().await;
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(s).await {
                        let (mut r, mut w) = tokio::io::split(tls);
                        let _ = tokio::io::copy(&mut r, &mut w).await;
                    }
                });
            }
        });
        (port, pem)
    }

    /// `/api/tls-check`: one handshake with the port an MSSP `SSL`/`TLS` names, judged like a
    /// TLS scan; a plain port and a private one without `--allow-private` say why.
    #[tokio::test]
    async fn tls_check_says_whether_a_port_speaks_tls() {
        let server = start(config()).await;
        let (port, _) = tls_echo().await;
        let (status, _, body) = http_get(
            server.addr,
            &format!("/api/tls-check?host=127.0.0.1&port={port}"),
            "",
        )
        .await;
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["tls"], true, "{v}");
        assert_eq!(v["verdict"], "self_signed", "{v}");
        assert!(
            v["verdict_text"]
                .as_str()
                .is_some_and(|t| t.starts_with("The certificate is self-signed")),
            "{v}"
        );

        let (plain, plain_port) = upstream().await;
        tokio::spawn(async move {
            while let Ok((mut s, _)) = plain.accept().await {
                let _ = s.write_all(b"Welcome!\r\nlogin: ").await;
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            }
        });
        let (_, _, body) = http_get(
            server.addr,
            &format!("/api/tls-check?host=127.0.0.1&port={plain_port}"),
            "",
        )
        .await;
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(
            (v["tls"].clone(), v["code"].clone()),
            (false.into(), "tls_failure".into()),
            "{v}"
        );
        assert!(
            v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("The TLS handshake failed: ")),
            "{v}"
        );

        let strict = start(iacscope::serve::Config {
            allow_private: false,
            ..config()
        })
        .await;
        let (_, _, body) = http_get(
            strict.addr,
            &format!("/api/tls-check?host=127.0.0.1&port={port}"),
            "",
        )
        .await;
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["code"], "refused_by_policy", "{v}");
    }

    #[tokio::test]
    async fn self_signed_is_refused_when_verifying() {
        let server = start(config()).await;
        let (port, _) = tls_echo().await;
        let mut ws = open_ws(server.addr, &format!("host=127.0.0.1&port={port}&tls=1")).await;
        let e = expect_error(&mut ws, "tls_failure").await;
        assert!(
            e["message"]
                .as_str()
                .is_some_and(|m| m.contains("certificate")),
            "{e}"
        );
    }

    #[tokio::test]
    async fn insecure_connects_and_reports_unverified() {
        let server = start(config()).await;
        let (port, _) = tls_echo().await;
        let mut ws = open_ws(
            server.addr,
            &format!("host=127.0.0.1&port={port}&tls=insecure"),
        )
        .await;
        let c = connected(&mut ws).await;
        let tls = &c["tls"];
        assert_eq!(tls["verified"], false, "{c}");
        assert!(tls["verify_error"].as_str().is_some(), "{c}");
        assert!(
            tls["protocol"]
                .as_str()
                .is_some_and(|p| p.starts_with("TLSv1.")),
            "{c}"
        );
        assert!(
            tls["subject"].as_str().is_some_and(|s| s.contains("rcgen")),
            "{c}"
        );
        assert_eq!(tls["subject"], tls["issuer"]);
        assert!(
            tls["not_after"].as_str().is_some_and(|s| s.ends_with('Z')),
            "{c}"
        );
        let data = pattern(200_000);
        for chunk in data.chunks(50_000) {
            send(&mut ws, chunk).await;
        }
        assert!(read_binary(&mut ws, data.len()).await == data);
        let id = c["session"].as_str().expect("id");
        let (_, _, body) =
            http_get(server.addr, &format!("/api/sessions/{id}/transcript"), "").await;
        assert!(String::from_utf8_lossy(&body).contains("meta tls insecure"));
    }

    #[tokio::test]
    async fn configured_root_verifies() {
        let (port, pem) = tls_echo().await;
        let roots = std::env::temp_dir().join(format!("iacscope-roots-{port}.pem"));
        std::fs::write(&roots, pem).expect("write roots");
        let server = start(iacscope::serve::Config {
            tls_roots: Some(roots.clone()),
            ..config()
        })
        .await;
        let mut ws = open_ws(server.addr, &format!("host=localhost&port={port}&tls=1")).await;
        let c = connected(&mut ws).await;
        assert_eq!(c["tls"]["verified"], true, "{c}");
        assert!(c["tls"].get("verify_error").is_none(), "{c}");
        send(&mut ws, b"\xFF\xFB\x01").await;
        assert_eq!(read_binary(&mut ws, 3).await, b"\xFF\xFB\x01");
        let _ = std::fs::remove_file(roots);
    }
}

/// A flood of one-byte messages is recorded within the session's transcript memory bound,
/// counted as what the entries cost (not their 1-byte payloads): the transcript is cut and
/// marked truncated, and the kept copy holds no more than the bound.
#[tokio::test]
async fn tiny_messages_are_bounded_by_what_they_cost() {
    const MESSAGES: usize = 30_000;
    let cfg = config();
    let bound = cfg.transcript_max_bytes;
    assert!(
        MESSAGES < bound,
        "the payload alone stays far inside the bound"
    );
    let server = start(cfg).await;
    let (l, port) = upstream().await;
    let mut ws = ws_to(server.addr, "127.0.0.1", port).await;
    let mut up = accept(&l).await;
    up.write_all(b"Welcome!\r\n").await.expect("greet");
    let sink = tokio::spawn(async move {
        let mut got = Vec::new();
        let _ = up.read_to_end(&mut got).await;
        got.len()
    });
    let id = connected(&mut ws).await["session"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(read_binary(&mut ws, 10).await, b"Welcome!\r\n");
    for _ in 0..MESSAGES {
        ws.feed(Message::Binary(vec![b'x'].into()))
            .await
            .expect("feed");
    }
    ws.close(None).await.expect("close");
    // The proxy closes the transcript before it answers the close frame.
    while let Some(m) = next(&mut ws).await {
        if matches!(m, Message::Close(_)) {
            break;
        }
    }
    assert_eq!(
        tokio::time::timeout(LIMIT, sink)
            .await
            .expect("eof")
            .expect("sink"),
        MESSAGES,
        "every byte was relayed"
    );
    let (status, _, body) =
        http_get(server.addr, &format!("/api/sessions/{id}/transcript"), "").await;
    assert_eq!(status, 200);
    let t = iacscope_shared::transcript::Transcript::parse(&String::from_utf8(body).expect("utf8"))
        .expect("parses");
    assert!(t.truncated, "{} entries kept", t.entries.len());
    assert!(t.entries.len() < MESSAGES);
    let held = server.state.store.closed_cost();
    assert!(
        held <= bound,
        "a kept transcript holds {held} bytes, over {bound}"
    );
}

/// The relay carries telnet only: a server that opens like another protocol (here an HTTP
/// server's answer, and a TLS server's alert on a plain session) is not relayed, and a
/// page whose first message is an HTTP request never reaches the server.
#[tokio::test]
async fn other_protocols_are_not_relayed() {
    let server = start(config()).await;
    for greeting in [
        &b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"[..],
        &[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46],
    ] {
        let (l, port) = upstream().await;
        let mut ws = ws_to(server.addr, "127.0.0.1", port).await;
        let mut up = accept(&l).await;
        connected(&mut ws).await;
        up.write_all(greeting).await.expect("write");
        let closed = control(&mut ws).await;
        assert_eq!(closed["type"], "closed", "{closed}");
        assert_eq!(closed["code"], "not_telnet", "{closed}");
        assert_eq!(closed["bytes_down"], 0, "nothing of it was relayed");
        assert!(
            closed["reason"]
                .as_str()
                .is_some_and(|r| r.contains("not telnet")),
            "{closed}"
        );
    }
    let (mut ws, mut up) = session_to_upstream(server.addr).await;
    send(&mut ws, b"GET / HTTP/1.1\r\nHost: internal\r\n\r\n").await;
    let closed = control(&mut ws).await;
    assert_eq!(closed["code"], "not_telnet", "{closed}");
    let mut got = Vec::new();
    tokio::time::timeout(LIMIT, up.read_to_end(&mut got))
        .await
        .expect("eof in time")
        .expect("read");
    assert!(got.is_empty(), "the request reached the server: {got:?}");
    // Telnet that merely begins like a signature is relayed after a short wait.
    let (mut ws, mut up) = session_to_upstream(server.addr).await;
    up.write_all(b"HT").await.expect("write");
    assert_eq!(read_binary(&mut ws, 2).await, b"HT");
}

/// The page's data waits until the server has shown it is not another protocol: a request
/// split over several messages is seen whole, and commands pipelined behind the opening
/// telnet negotiation never reach a mail server that greets.
#[tokio::test]
async fn requests_cannot_be_split_or_pipelined_past_the_check() {
    let server = start(config()).await;
    // `G`, then `ET /secret`: an HTTP/0.9 request in two messages, to a silent server.
    let (mut ws, mut up) = session_to_upstream(server.addr).await;
    send(&mut ws, b"\xff\xfb\x18").await;
    send(&mut ws, b"G").await;
    send(&mut ws, b"ET /secret\r\n").await;
    let closed = control(&mut ws).await;
    assert_eq!(closed["code"], "not_telnet", "{closed}");
    let mut got = Vec::new();
    tokio::time::timeout(LIMIT, up.read_to_end(&mut got))
        .await
        .expect("eof in time")
        .expect("read");
    assert_eq!(got, b"\xff\xfb\x18", "only the telnet command went through");
    // SMTP pipelined behind the negotiation, to a server that greets a moment later.
    let (mut ws, mut up) = session_to_upstream(server.addr).await;
    send(&mut ws, b"\xff\xfd\x03\r\nMAIL FROM:<spam@example.org>\r\n").await;
    let mut first = [0u8; 3];
    up.read_exact(&mut first).await.expect("the negotiation");
    assert_eq!(first, [0xff, 0xfd, 0x03]);
    up.write_all(b"220 mail.example ESMTP\r\n")
        .await
        .expect("greet");
    let closed = control(&mut ws).await;
    assert_eq!(closed["code"], "not_telnet", "{closed}");
    let mut rest = Vec::new();
    tokio::time::timeout(LIMIT, up.read_to_end(&mut rest))
        .await
        .expect("eof in time")
        .expect("read");
    assert!(
        rest.is_empty(),
        "pipelined bytes reached the server: {rest:?}"
    );
    // A telnet server that waits for the client gets the page's data after a moment.
    let (mut ws, mut up) = session_to_upstream(server.addr).await;
    send(&mut ws, b"\r\n").await;
    let mut got = [0u8; 2];
    tokio::time::timeout(LIMIT, up.read_exact(&mut got))
        .await
        .expect("released after the silent wait")
        .expect("read");
    assert_eq!(&got, b"\r\n");
}
