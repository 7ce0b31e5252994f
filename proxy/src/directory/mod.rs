//! The directory: what iacscope keeps about servers and shows of them. `db` is the store
//! (SQLite or PostgreSQL), `save` turns a closed relay transcript into a stored scan (the
//! record is replayed by the engine, never taken from a client) and serves the permalink
//! API; `livescan` runs server-side scans through the relay's `connect` and stores them on
//! the save path; `widget` is what the iframe `embed` and the SVG `badge` share; `crawl`
//! (`iacscope crawl`, and `serve`'s schedule in `crawl::schedule`) runs many such scans from
//! seed lists or the census and records each server's history; `census` turns the store into
//! numbers (`/api/stats`) and directory files (`export --format telix|csv`); `changes` lists
//! what changed in a server's MSSP between scans; `tlscheck` tries one TLS handshake with a
//! port a server's MSSP names.
//!
//! Imports go one way: `badge` and `embed` use `widget` and `livescan`; `widget` uses
//! `livescan`; `crawl` uses `livescan`, `save` and `db`; `census` uses `db`; `livescan`
//! uses `save` and `db`; `save` uses `changes` and `db`; none of them uses `badge`, `embed`,
//! `crawl` or `census`, and `changes` uses none of them. The
//! directory may use the relay (`policy` for SSRF checks, `limits`, `tls`, `sniff`,
//! `session::connect`, `store`); the relay never uses the directory.

use crate::serve::AppState;
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

pub mod badge;
pub mod census;
pub mod changes;
pub mod crawl;
pub mod db;
pub mod embed;
pub mod livescan;
pub mod save;
pub mod tlscheck;
pub mod widget;

/// The directory's routes: the permalink API ([`save::router`]), the widgets and oEmbed
/// ([`embed::router`]) and the badge.
pub fn router() -> Router<Arc<AppState>> {
    save::router()
        .merge(embed::router())
        .route("/badge/{host}/{file}", get(badge::badge))
        .route("/api/tls-check", get(tlscheck::tls_check))
        .route("/api/stats", get(census::stats_handler))
}
