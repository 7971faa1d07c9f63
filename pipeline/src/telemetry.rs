//! Logs, Prometheus metrics, /healthz and /readyz, and SIGTERM handling.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::{extract::State, http::StatusCode, routing::get, Router};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

/// Initialises tracing. `RUST_LOG` filters (default `info`); `HERALD_LOG_FORMAT=json`
/// switches to JSON lines. Logs never carry bot tokens, message texts or user names.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::env::var("HERALD_LOG_FORMAT").as_deref() == Ok("json") {
        let _ = builder.json().try_init();
    } else {
        let _ = builder.try_init();
    }
}

/// Installs the global Prometheus recorder (once per process) and returns its handle.
pub fn install_metrics() -> PrometheusHandle {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets(&[0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
                .expect("static buckets are valid")
                .install_recorder()
                .expect("no other metrics recorder is installed")
        })
        .clone()
}

/// Readiness flag: `/readyz` answers 200 once every part of the process has set it.
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set_ready(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
struct Ctx {
    handle: PrometheusHandle,
    ready: Readiness,
}

/// Serves `/metrics` (Prometheus text), `/healthz` (200 while the process runs) and
/// `/readyz` (200 once ready, 503 before) on `addr` until `shutdown`.
pub async fn serve(addr: SocketAddr, ready: Readiness, shutdown: CancellationToken) -> anyhow::Result<()> {
    let ctx = Ctx {
        handle: install_metrics(),
        ready,
    };
    let app = Router::new()
        .route("/metrics", get(|State(c): State<Ctx>| async move { c.handle.render() }))
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(|State(c): State<Ctx>| async move {
                if c.ready.is_ready() {
                    (StatusCode::OK, "ready")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "starting")
                }
            }),
        )
        .with_state(ctx);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot bind metrics address {addr}: {e}"))?;
    tracing::info!(%addr, "serving /metrics /healthz /readyz");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    Ok(())
}

/// Cancels the returned token on SIGTERM or Ctrl-C: stop pulling, finish in-flight work.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!("shutdown requested: finishing in-flight work");
        t.cancel();
    });
    token
}
