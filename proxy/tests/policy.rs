//! The target policy (SSRF guard): a table of hostile spellings checked by the policy
//! function (no connection is ever made to a non-loopback address), and the loopback ones
//! driven through the real server with and without `allow_private`.

mod common;

use common::*;
use iacscope::relay::policy::{non_public_reason, parse_host, Host, Policy};
use iacscope::serve::Config;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Spellings that must all be refused by the default policy, before any DNS or connect.
const REFUSED: &[&str] = &[
    // Loopback, every way.
    "127.0.0.1",
    "127.1",
    "127.0.1",
    "2130706433",
    "0x7f.1",
    "0x7f000001",
    "0X7F.0.0.1",
    "017700000001",
    "0177.0.0.1",
    "127.000.000.001",
    "0x7f.0x0.0x0.0x1",
    "127.255.255.254",
    "localhost",
    "localhost.",
    "LOCALHOST",
    "foo.localhost",
    "::1",
    "[::1]",
    "[0:0:0:0:0:0:0:1]",
    "[::ffff:7f00:1]",
    "::ffff:127.0.0.1",
    "[::ffff:127.0.0.1]",
    "[::127.0.0.1]",
    "[64:ff9b::7f00:1]",
    "[2002:7f00:1::]",
    "[2001:0:4136:e378:8000:63bf:80ff:fffe]", // Teredo, client 127.0.0.1
    // Unspecified and this-network.
    "0.0.0.0",
    "0",
    "0x0",
    "[::]",
    // Private, shared, link-local, metadata.
    "10.0.0.1",
    "10.1",
    "167772161",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "0xc0a80101",
    "100.64.0.1",
    "100.100.100.200",
    "169.254.169.254",
    "0xa9fea9fe",
    "[::ffff:169.254.169.254]",
    "[fd00:ec2::254]",
    "[fc00::1]",
    "[fe80::1]",
    "[fec0::1]",
    // Multicast, broadcast, reserved, documentation, benchmarking.
    "224.0.0.1",
    "239.255.255.250",
    "255.255.255.255",
    "240.0.0.1",
    "192.0.0.8",
    "192.0.2.1",
    "198.51.100.7",
    "203.0.113.9",
    "198.18.0.1",
    "198.19.255.255",
    "[ff02::1]",
    "[2001:db8::1]",
    "[2001:2::1]",
    "[100::1]",
    "[::ffff:10.0.0.1]",
    "[64:ff9b::a00:1]",
    "[2002:c0a8:101::1]",
    // Single-label names would go through resolver search domains.
    "metadata",
    // Malformed: must not reach the resolver.
    "1.2.3.4.5",
    "256.1.1.1",
    "0x1g.1",
    "08.1",
    "1..1",
    "[::1",
    "127.0.0.1:23",
    "exa mple.org",
    "-bad.example",
    "",
];

#[test]
fn every_hostile_spelling_is_refused() {
    let p = Policy::default();
    assert!(REFUSED.len() >= 40);
    for spelling in REFUSED {
        match p.check_target(spelling, 4000) {
            Ok(h) => panic!("`{spelling}` got through as {h:?}"),
            Err(r) => assert!(
                ["refused_by_policy", "bad_host"].contains(&r.code),
                "{spelling}: {r:?}"
            ),
        }
    }
}

#[test]
fn public_targets_pass() {
    let p = Policy::default();
    for ok in [
        "8.8.8.8",
        "1.1.1.1",
        "[2606:4700::1111]",
        "[::ffff:8.8.8.8]",
        "[64:ff9b::808:808]",
        "mud.example.org",
        "xn--bcher-kva.example",
        "Example.ORG.",
    ] {
        assert!(p.check_target(ok, 4000).is_ok(), "{ok}");
    }
    assert!(p.check_target("8.8.8.8", 22).is_err(), "SSH port");
    assert!(p.check_target("8.8.8.8", 25).is_err(), "SMTP port");
    assert!(p.check_target("8.8.8.8", 6379).is_err(), "Redis port");
    assert!(p.check_target("8.8.8.8", 23).is_ok());
}

#[test]
fn spellings_parse_to_the_address_they_mean() {
    let lo: IpAddr = "127.0.0.1".parse().expect("ip");
    for s in [
        "127.1",
        "2130706433",
        "0x7f.1",
        "017700000001",
        "[::ffff:7f00:1]",
    ] {
        assert_eq!(parse_host(s), Ok(Host::Ip(lo)), "{s}");
    }
    assert_eq!(parse_host("localhost."), Ok(Host::Name("localhost".into())));
    assert!(non_public_reason("169.254.169.254".parse().expect("ip"))
        .is_some_and(|r| r.contains("metadata")));
}

#[test]
fn operator_lists() {
    let p = Policy {
        allow_nets: vec!["10.1.2.0/24".parse().expect("net")],
        deny_nets: vec!["8.8.8.0/24".parse().expect("net")],
        allow_hosts: vec!["*.lab.example".into()],
        deny_hosts: vec!["evil.example".into()],
        ..Policy::default()
    };
    assert!(p.check_target("10.1.2.3", 4000).is_ok());
    assert!(p.check_target("10.1.3.3", 4000).is_err());
    assert!(p.check_target("8.8.8.8", 4000).is_err());
    assert!(p.check_target("evil.example", 4000).is_err());
    let (_, v) = p.check_target("mud.lab.example", 4000).expect("allowed");
    assert!(v.operator_allowed);
    assert!(p.check_ip("10.9.9.9".parse().expect("ip"), true).is_ok());
    assert!(
        p.check_ip("8.8.8.8".parse().expect("ip"), true).is_err(),
        "deny wins"
    );
}

/// An echo server that counts the connections it accepts.
async fn counting_echo() -> (u16, Arc<AtomicUsize>) {
    let (l, port) = upstream().await;
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    (port, count)
}

/// Loopback spellings: refused by a default server, working with `allow_private`.
const LOOPBACK: &[&str] = &[
    "127.0.0.1",
    "127.1",
    "127.0.1",
    "2130706433",
    "0x7f.1",
    "0x7f000001",
    "017700000001",
    "0177.0.0.1",
    "127.000.000.001",
    "localhost",
    "localhost.",
    "LocalHost",
    "[::ffff:7f00:1]",
    "::ffff:127.0.0.1",
];

#[tokio::test]
async fn loopback_spellings_through_the_server() {
    let (port, count) = counting_echo().await;
    let strict = start(Config {
        allow_private: false,
        max_new_sessions_per_ip_per_minute: 1000,
        ..config()
    })
    .await;
    for s in LOOPBACK {
        let mut ws = ws_to(strict.addr, s, port).await;
        expect_error(&mut ws, "refused_by_policy").await;
    }
    assert_eq!(count.load(Ordering::SeqCst), 0, "nothing was connected");

    let open = start(Config {
        max_new_sessions_per_ip_per_minute: 1000,
        ..config()
    })
    .await;
    for s in LOOPBACK {
        let mut ws = ws_to(open.addr, s, port).await;
        let c = connected(&mut ws).await;
        assert_eq!(c["ip"], "127.0.0.1", "{s}");
        send(&mut ws, &[0xFF, 0x00, 0xFF]).await;
        assert_eq!(read_binary(&mut ws, 3).await, [0xFF, 0x00, 0xFF], "{s}");
    }
    assert_eq!(count.load(Ordering::SeqCst), LOOPBACK.len());
}

#[tokio::test]
async fn names_resolving_to_private_addresses_are_refused() {
    let (port, count) = counting_echo().await;
    let mut resolve = std::collections::BTreeMap::new();
    resolve.insert(
        "evil.test".to_string(),
        vec!["10.1.2.3".parse().expect("ip")],
    );
    resolve.insert(
        "mixed.test".to_string(),
        vec![
            "8.8.8.8".parse().expect("ip"),
            "127.0.0.1".parse().expect("ip"),
        ],
    );
    resolve.insert(
        "rebind.test".to_string(),
        vec!["127.0.0.1".parse().expect("ip")],
    );
    resolve.insert("gone.test".to_string(), vec![]);
    let server = start(Config {
        allow_private: false,
        resolve,
        ..config()
    })
    .await;
    for name in ["evil.test", "mixed.test", "rebind.test"] {
        let mut ws = ws_to(server.addr, name, port).await;
        let e = expect_error(&mut ws, "refused_by_policy").await;
        assert!(
            e["message"]
                .as_str()
                .is_some_and(|m| m.contains("resolves to")),
            "{e}"
        );
    }
    let mut ws = ws_to(server.addr, "gone.test", port).await;
    expect_error(&mut ws, "dns_failure").await;
    // The system resolver: localhost from /etc/hosts, refused as loopback by name.
    let mut ws = ws_to(server.addr, "localhost", port).await;
    expect_error(&mut ws, "refused_by_policy").await;
    assert_eq!(count.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn denied_ports_even_with_allow_private() {
    let server = start(config()).await;
    for port in [22, 25, 80, 443, 3306, 5432, 6379, 11211] {
        let mut ws = ws_to(server.addr, "127.0.0.1", port).await;
        expect_error(&mut ws, "refused_by_policy").await;
    }
}

#[tokio::test]
async fn origin_is_checked() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let port = echo_server().await;
    let server = start(Config {
        allowed_origins: vec!["https://iacscope.example".into()],
        ..config()
    })
    .await;
    let url = format!("ws://{}/ws?host=127.0.0.1&port={port}", server.addr);
    let with_origin = |origin: &str| {
        let mut req = url.clone().into_client_request().expect("request");
        req.headers_mut()
            .insert("origin", origin.parse().expect("header"));
        req
    };
    // Upgraded only to be told why (a page can show it); nothing is connected.
    let (mut hostile, _) = tokio_tungstenite::connect_async(with_origin("https://evil.example"))
        .await
        .expect("upgraded");
    expect_error(&mut hostile, "forbidden_origin").await;
    for ok in [
        format!("http://{}", server.addr),
        "https://iacscope.example".into(),
    ] {
        let (mut ws, _) = tokio_tungstenite::connect_async(with_origin(&ok))
            .await
            .expect("allowed origin");
        connected(&mut ws).await;
    }
    assert_eq!(
        metric(
            server.addr,
            "iacscope_refusals_total{reason=\"forbidden_origin\"}"
        )
        .await,
        1.0
    );
}
