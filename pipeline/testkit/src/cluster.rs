//! A JetStream cluster of real nats-servers on loopback ports, each with its own store,
//! that a test can kill (SIGKILL) and restart node by node.

use std::path::PathBuf;
use std::process::Child;
use std::time::Duration;

use crate::{free_port, kill_group, listens, nats_server_binary, server_conf, spawn_in_group, wait_until_ready, ServerClass, START_TRIES};

/// One server of the cluster.
struct Node {
    name: String,
    port: u16,
    /// Monitoring port (`/varz`).
    monitor: u16,
    conf: PathBuf,
    child: Option<Child>,
}

/// `n` nats-servers in one cluster (`herald`), JetStream on each, killed on drop.
///
/// ```no_run
/// let mut cluster = herald_testkit::LocalCluster::start(3)?;
/// println!("{}", cluster.url()); // nats://127.0.0.1:a,nats://127.0.0.1:b,...
/// cluster.kill9("n2");
/// cluster.restart("n2")?;
/// # anyhow::Ok(())
/// ```
pub struct LocalCluster {
    nodes: Vec<Node>,
    _dir: tempfile::TempDir,
}

impl LocalCluster {
    /// Starts `n` servers (`n1`, `n2`, ...) routed to each other and waits until each
    /// accepts connections (the JetStream meta leader may still be electing: see
    /// [`LocalCluster::wait_for_jetstream`]).
    ///
    /// Errors: a server would not start (binary missing, port taken).
    pub fn start(n: usize) -> anyhow::Result<Self> {
        Self::start_class(n, ServerClass::Events, "n")
    }

    /// [`LocalCluster::start`] with `class`'s configuration (the money class: every
    /// node fsyncs every write), servers named `prefix1`, `prefix2`, ... in a cluster of
    /// that prefix.
    ///
    /// Errors: as [`LocalCluster::start`].
    pub fn start_class(n: usize, class: ServerClass, prefix: &str) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let routes: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let route_urls: Vec<String> = routes.iter().map(|p| format!("\"nats-route://127.0.0.1:{p}\"")).collect();
        let mut nodes = Vec::new();
        for (i, route) in routes.iter().enumerate() {
            let name = format!("{prefix}{}", i + 1);
            let store = dir.path().join(&name);
            std::fs::create_dir_all(&store)?;
            let conf = dir.path().join(format!("{name}.conf"));
            let text = format!(
                "{}\nserver_name: \"{name}\"\ncluster {{\n  name: \"herald-{prefix}\"\n  listen: \"127.0.0.1:{route}\"\n  routes: [{}]\n}}\n",
                server_conf(class, &store),
                route_urls.join(", ")
            );
            std::fs::write(&conf, text)?;
            nodes.push(Node {
                name,
                port: free_port(),
                monitor: free_port(),
                conf,
                child: None,
            });
        }
        let mut cluster = LocalCluster { nodes, _dir: dir };
        for i in 0..n {
            cluster.spawn(i)?;
        }
        for i in 0..n {
            cluster.wait_listening(i)?;
        }
        Ok(cluster)
    }

    fn spawn(&mut self, i: usize) -> anyhow::Result<()> {
        let node = &mut self.nodes[i];
        let args = [
            "-a".to_string(),
            "127.0.0.1".into(),
            "-p".into(),
            node.port.to_string(),
            "-m".into(),
            node.monitor.to_string(),
            "-c".into(),
            node.conf.display().to_string(),
        ];
        node.child = Some(spawn_in_group(&nats_server_binary(), &args)?);
        Ok(())
    }

    /// Waits until node `i` accepts clients. A node that exited or did not listen (its
    /// client or monitor port, free when picked, was taken by another process
    /// meanwhile) is started again on fresh ports, [`START_TRIES`] times in all.
    fn wait_listening(&mut self, i: usize) -> anyhow::Result<()> {
        let mut tries = 1;
        loop {
            let node = &mut self.nodes[i];
            let child = node.child.as_mut().expect("node spawned before waiting");
            let Err(e) = wait_until_ready(node.port, &node.name, child, listens) else {
                return Ok(());
            };
            if tries == START_TRIES {
                return Err(e.context(format!("nats-server {} did not start in {START_TRIES} tries", node.name)));
            }
            eprintln!("{e:#}; starting it again on fresh ports");
            tries += 1;
            let name = node.name.clone();
            self.kill9(&name);
            (self.nodes[i].port, self.nodes[i].monitor) = (free_port(), free_port());
            self.spawn(i)?;
        }
    }

    /// Every server's client URL, comma-separated (what `--nats-url` takes).
    pub fn url(&self) -> String {
        self.urls().join(",")
    }

    /// Every server's client URL.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| format!("nats://127.0.0.1:{}", n.port)).collect()
    }

    /// Every server's monitoring URL, comma-separated (what `--nats-money-monitor` takes).
    pub fn monitors(&self) -> String {
        let urls: Vec<String> = self.nodes.iter().map(|n| format!("http://127.0.0.1:{}", n.monitor)).collect();
        urls.join(",")
    }

    /// The servers' names, `n1`...
    pub fn names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name.clone()).collect()
    }

    fn index(&self, name: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .unwrap_or_else(|| panic!("no server {name}"))
    }

    /// SIGKILL to server `name` (its store stays, for [`LocalCluster::restart`]).
    pub fn kill9(&mut self, name: &str) {
        let i = self.index(name);
        if let Some(mut c) = self.nodes[i].child.take() {
            kill_group(c.id());
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts server `name` again on its port with its store.
    ///
    /// Errors: it would not start or listen.
    pub fn restart(&mut self, name: &str) -> anyhow::Result<()> {
        let i = self.index(name);
        self.kill9(name);
        self.spawn(i)?;
        self.wait_listening(i)
    }

    /// Waits until JetStream answers through the cluster (a meta leader is elected).
    ///
    /// Errors: no answer within `timeout`.
    pub async fn wait_for_jetstream(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        let client = async_nats::connect(self.urls()).await?;
        let js = async_nats::jetstream::new(client);
        loop {
            if js.query_account().await.is_ok() {
                return Ok(());
            }
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "JetStream not ready within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for name in self.names() {
            self.kill9(&name);
        }
    }
}
