//! Logs, Prometheus metrics, /healthz and /readyz, and SIGTERM handling.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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

/// Logs to `file` (appended) instead of the terminal: the demo keeps library lines out
/// of the transcript it prints. Same filter and format as [`init_logging`].
///
/// Errors: the file cannot be opened.
pub fn init_logging_to(file: &std::path::Path) -> std::io::Result<()> {
    let file = std::fs::OpenOptions::new().create(true).append(true).open(file)?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init();
    Ok(())
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

/// Readiness of a process: `/readyz` answers 200 once every registered part (a stage's
/// consumer, a replica, a source) is up and nothing has failed, 503 before and after.
///
/// ```
/// use herald_runtime::telemetry::Readiness;
/// let ready = Readiness::default();
/// let consumer = ready.part();
/// assert!(!ready.is_ready());
/// consumer.set_ready();
/// assert!(ready.is_ready());
/// ready.fail();
/// assert!(!ready.is_ready());
/// ```
#[derive(Clone, Default)]
pub struct Readiness(Arc<ReadyState>);

#[derive(Default)]
struct ReadyState {
    parts: AtomicUsize,
    up: AtomicUsize,
    failed: AtomicBool,
    /// Named dependencies that come and go (`nats money server`), see [`Readiness::dependency`].
    dependencies: std::sync::Mutex<Vec<(&'static str, Arc<AtomicBool>)>>,
}

/// A dependency the process needs now, not only at start (a server): [`Dependency::set`]
/// as it goes down and comes back; `/readyz` names the ones that are down.
#[derive(Clone)]
pub struct Dependency(Arc<AtomicBool>);

impl Dependency {
    /// Up (`true`) or down.
    pub fn set(&self, up: bool) {
        self.0.store(up, Ordering::SeqCst);
    }
}

/// One part of a process that must be up before it is ready; [`ReadyPart::set_ready`]
/// counts once however often it is called.
#[derive(Clone)]
pub struct ReadyPart {
    state: Arc<ReadyState>,
    done: Arc<AtomicBool>,
}

impl ReadyPart {
    /// This part is up (counted once).
    pub fn set_ready(&self) {
        if !self.done.swap(true, Ordering::SeqCst) {
            self.state.up.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl std::fmt::Debug for ReadyPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReadyPart({})", self.done.load(Ordering::SeqCst))
    }
}

impl Readiness {
    /// Registers a part that is not ready yet.
    pub fn part(&self) -> ReadyPart {
        self.0.parts.fetch_add(1, Ordering::SeqCst);
        ReadyPart {
            state: self.0.clone(),
            done: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A part that is ready at once (for what has nothing to wait for).
    pub fn set_ready(&self) {
        self.part().set_ready();
    }

    /// The process is going down (a task failed): not ready from now on.
    pub fn fail(&self) {
        self.0.failed.store(true, Ordering::SeqCst);
    }

    /// Registers dependency `name` (down until set up).
    pub fn dependency(&self, name: &'static str) -> Dependency {
        let up = Arc::new(AtomicBool::new(false));
        self.0.dependencies.lock().expect("readiness lock").push((name, up.clone()));
        Dependency(up)
    }

    /// The dependencies that are down now, by name.
    pub fn missing(&self) -> Vec<&'static str> {
        let deps = self.0.dependencies.lock().expect("readiness lock");
        deps.iter().filter(|(_, up)| !up.load(Ordering::SeqCst)).map(|(n, _)| *n).collect()
    }

    /// Every part is up, every dependency is up, and nothing has failed.
    pub fn is_ready(&self) -> bool {
        let s = &self.0;
        !s.failed.load(Ordering::SeqCst)
            && s.parts.load(Ordering::SeqCst) > 0
            && s.up.load(Ordering::SeqCst) == s.parts.load(Ordering::SeqCst)
            && self.missing().is_empty()
    }
}

#[derive(Clone)]
struct Ctx {
    handle: PrometheusHandle,
    ready: Readiness,
    /// The standard `process_*` metrics (CPU seconds, resident memory, threads, open
    /// fds, start time), read from /proc at each scrape.
    process: Arc<metrics_process::Collector>,
}

/// Serves `/metrics` (Prometheus text, with the `process_*` metrics and `herald_ready`
/// read at each scrape), `/healthz` (200 while the process runs) and
/// `/readyz` (200 `ready` once ready; 503 before, with what is missing: `missing: nats
/// money server`) on `addr` until `shutdown`.
pub async fn serve(addr: SocketAddr, ready: Readiness, shutdown: CancellationToken) -> anyhow::Result<()> {
    let process = Arc::new(metrics_process::Collector::default());
    let handle = install_metrics();
    process.describe();
    let ctx = Ctx { handle, ready, process };
    let app = Router::new()
        .route(
            "/metrics",
            get(|State(c): State<Ctx>| async move {
                c.process.collect();
                metrics::gauge!(crate::metric::READY.name).set(if c.ready.is_ready() { 1.0 } else { 0.0 });
                c.handle.render()
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(|State(c): State<Ctx>| async move {
                let missing = c.ready.missing();
                if c.ready.is_ready() {
                    (StatusCode::OK, "ready".to_string())
                } else if !missing.is_empty() {
                    (StatusCode::SERVICE_UNAVAILABLE, format!("missing: {}", missing.join(", ")))
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "starting".to_string())
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

/// Waits for every task of a process. The first that fails, returns an error or
/// panics marks the process not ready, cancels `shutdown` (the others finish their
/// in-flight work) and makes this return an error, so the process exits non-zero and
/// its supervisor restarts it.
///
/// Errors: the first task failure, with the task's error or panic message.
pub async fn supervise(
    mut tasks: tokio::task::JoinSet<anyhow::Result<()>>,
    ready: &Readiness,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let mut result = Ok(());
    while let Some(done) = tasks.join_next().await {
        let failure = match done {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e,
            Err(join) if join.is_panic() => {
                let panic = join.into_panic();
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "non-string panic".into());
                anyhow::anyhow!("task panicked: {what}")
            }
            Err(join) => anyhow::anyhow!("task cancelled: {join}"),
        };
        tracing::error!(error = %format!("{failure:#}"), "task failed; shutting down");
        ready.fail();
        shutdown.cancel();
        if result.is_ok() {
            result = Err(failure);
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_task_fails_the_process_and_stops_the_others() {
        let ready = Readiness::default();
        ready.set_ready();
        let shutdown = CancellationToken::new();
        let mut tasks = tokio::task::JoinSet::new();
        let s = shutdown.clone();
        // a well-behaved task: runs until told to stop
        tasks.spawn(async move {
            s.cancelled().await;
            Ok(())
        });
        tasks.spawn(async { panic!("stage blew up") });
        let err = supervise(tasks, &ready, &shutdown).await.unwrap_err();
        assert!(format!("{err}").contains("stage blew up"), "{err}");
        assert!(shutdown.is_cancelled(), "the others are told to stop");
        assert!(!ready.is_ready(), "/readyz fails before the exit");
    }

    #[tokio::test]
    async fn tasks_that_end_well_leave_the_process_ready() {
        let ready = Readiness::default();
        ready.set_ready();
        let shutdown = CancellationToken::new();
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(async { Ok(()) });
        supervise(tasks, &ready, &shutdown).await.unwrap();
        assert!(ready.is_ready() && !shutdown.is_cancelled());
    }
}
