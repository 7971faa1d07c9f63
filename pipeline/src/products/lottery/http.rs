//! The bundles over HTTP: `GET /lottery/rounds/<round>/bundle.json`, straight from the
//! object store (404 until the round is drawn).

use std::sync::Arc;

use async_nats::jetstream::object_store::ObjectStore;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use super::service::Lottery;

async fn bundle(State(store): State<Arc<ObjectStore>>, Path(round): Path<u64>) -> Response {
    let name = Lottery::bundle_name(round);
    let mut object = match store.get(name.as_str()).await {
        Ok(o) => o,
        Err(_) => return (StatusCode::NOT_FOUND, format!("round {round} has no bundle (not drawn yet?)\n")).into_response(),
    };
    let mut bytes = Vec::new();
    if let Err(e) = object.read_to_end(&mut bytes).await {
        return (StatusCode::SERVICE_UNAVAILABLE, format!("reading {name}: {e}\n")).into_response();
    }
    ([(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

/// Serves the bundles on `addr` until `shutdown`.
///
/// Errors: the address cannot be bound.
pub async fn serve(addr: std::net::SocketAddr, store: ObjectStore, shutdown: CancellationToken) -> anyhow::Result<()> {
    let app = axum::Router::new().route("/lottery/rounds/{round}/bundle.json", axum::routing::get(bundle)).with_state(Arc::new(store));
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("--lottery-http {addr}: {e}"))?;
    tracing::info!(%addr, "lottery bundles served");
    axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await?;
    Ok(())
}
