//! `GET /api/tls-check?host=H&port=P`: does the TLS port a server's MSSP names (`SSL`, `TLS`)
//! really speak TLS? One handshake, no scan: under the same SSRF policy, rate limit and
//! target slots as `/ws` (it is a connection to the target like any other), the certificate
//! judged as a TLS scan judges it, and the connection closed at once.

use crate::relay::session::{self, WsParams};
use crate::serve::AppState;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::time::timeout;
use tokio::time::Instant;

/// The query.
#[derive(Debug, Deserialize)]
pub struct TlsCheckQuery {
    host: String,
    port: u16,
}

/// Runs the handshake and answers `{"tls": true, "verdict": …}` or `{"tls": false, "code",
/// "message"}` (the claim does not hold, or the proxy refused to try: `code` tells which).
pub async fn tls_check(
    State(st): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<TlsCheckQuery>,
) -> Response {
    let client = crate::serve::client_ip(&st.config, peer.ip(), &headers);
    if let Err(l) = st.limits.spend(client, Instant::now()) {
        st.metrics.refused(l.label());
        return (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({"tls": false, "code": "limit_reached", "message": l.message()})),
        )
            .into_response();
    }
    let params = WsParams {
        host: Some(q.host),
        port: Some(q.port.to_string()),
        tls: Some("insecure".into()),
    };
    let connect = session::connect(&st, &params, client, false);
    let answer = match timeout(st.config.connect_timeout, connect).await {
        Ok(Ok((_, up))) => match up.tls {
            Some(t) => json!({
                "tls": true,
                "verified": t.verified,
                "verdict": t.verdict,
                "verdict_text": t.verdict_text,
                "protocol": t.protocol,
                "subject": t.subject,
                "alt_names": t.alt_names,
                "not_after": t.not_after,
            }),
            None => json!({"tls": false, "code": "internal", "message": "no TLS session"}),
        },
        Ok(Err(f)) => {
            st.metrics.refused(f.metric);
            json!({"tls": false, "code": f.code, "message": f.message})
        }
        Err(_) => json!({
            "tls": false,
            "code": "timeout",
            "message": format!(
                "no TLS handshake within {} s",
                st.config.connect_timeout.as_secs_f64()
            ),
        }),
    };
    Json(answer).into_response()
}
