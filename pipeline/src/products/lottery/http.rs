//! The lottery over HTTP, for anyone to check:
//!
//! - `GET /lottery/rounds/<round>/bundle.json`: the draw's bundle, straight from the
//!   object store (404 until the round is drawn);
//! - `GET /lottery/rounds/<round>/proof/<ticket>.json`: the ticket's inclusion proof
//!   against the root published at the close (404 until the sale closed), a
//!   [`herald_draw::proof::Proof`] that `herald-verify --proof` checks.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use herald_draw::proof::Proof;
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use super::journal::Phase;
use super::service::Lottery;

async fn bundle(State(l): State<Arc<Lottery>>, Path(round): Path<u64>) -> Response {
    let name = Lottery::bundle_name(round);
    let mut object = match l.bundles.get(name.as_str()).await {
        Ok(o) => o,
        Err(_) => return (StatusCode::NOT_FOUND, format!("round {round} has no bundle (not drawn yet?)\n")).into_response(),
    };
    let mut bytes = Vec::new();
    if let Err(e) = object.read_to_end(&mut bytes).await {
        return (StatusCode::SERVICE_UNAVAILABLE, format!("reading {name}: {e}\n")).into_response();
    }
    ([(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

async fn proof(State(l): State<Arc<Lottery>>, Path((round, ticket)): Path<(u64, String)>) -> Response {
    let Some(ticket) = ticket.strip_suffix(".json").and_then(|t| t.parse::<u64>().ok()) else {
        return (StatusCode::NOT_FOUND, "use /lottery/rounds/<round>/proof/<ticket>.json\n").into_response();
    };
    let r = match l.round(round).await {
        Ok(r) => r,
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, format!("reading round {round}: {e}\n")).into_response(),
    };
    if r.phase.is_none_or(|p| p < Phase::Closed) {
        return (StatusCode::NOT_FOUND, format!("round {round}'s sale has not closed: no root yet\n")).into_response();
    }
    let purchases: Vec<_> = r.purchases.iter().map(|p| (p.receipt_id, p.count)).collect();
    match Proof::build(round, &purchases, ticket) {
        Some(p) => axum::Json(p).into_response(),
        None => (StatusCode::NOT_FOUND, format!("round {round} has {} tickets\n", r.sold)).into_response(),
    }
}

/// Serves bundles and proofs on `addr` until `shutdown`.
///
/// Errors: the address cannot be bound.
pub async fn serve(addr: std::net::SocketAddr, lottery: Arc<Lottery>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let app = axum::Router::new()
        .route("/lottery/rounds/{round}/bundle.json", axum::routing::get(bundle))
        .route("/lottery/rounds/{round}/proof/{ticket}", axum::routing::get(proof))
        .with_state(lottery);
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("--lottery-http {addr}: {e}"))?;
    tracing::info!(%addr, "lottery bundles and proofs served");
    axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await?;
    Ok(())
}
