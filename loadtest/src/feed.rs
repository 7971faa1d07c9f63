//! A websocket feed server: every connected client receives every frame published to
//! it. Speaks enough of Solana's `transactionSubscribe` to confirm a subscription.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;

/// A running feed server.
///
/// ```no_run
/// # async fn demo() -> anyhow::Result<()> {
/// let feed = herald_loadtest::feed::FeedServer::start("127.0.0.1:0".parse()?).await?;
/// // start the pipeline with --feed-url feed.url()
/// feed.wait_for_clients(1, std::time::Duration::from_secs(30)).await?;
/// feed.publish(r#"{"type":"call","id":"1","chain":"solana","token":"So1","caller_id":"c","ts_ms":0}"#.into());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct FeedServer {
    tx: broadcast::Sender<Arc<String>>,
    kick: broadcast::Sender<()>,
    clients: Arc<AtomicUsize>,
    pub addr: SocketAddr,
}

impl FeedServer {
    /// Binds `addr` (port 0 for any free port) and accepts clients in the background.
    pub async fn start(addr: SocketAddr) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        // deep enough to hold a whole benchmark burst while the pipeline applies backpressure
        let (tx, _) = broadcast::channel::<Arc<String>>(1 << 20);
        let clients = Arc::new(AtomicUsize::new(0));
        let (kick, _) = broadcast::channel::<()>(4);
        let server = FeedServer {
            tx: tx.clone(),
            kick: kick.clone(),
            clients: clients.clone(),
            addr,
        };
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let mut rx = tx.subscribe();
                let mut kicked = kick.subscribe();
                let clients = clients.clone();
                tokio::spawn(async move {
                    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
                        return;
                    };
                    clients.fetch_add(1, Ordering::SeqCst);
                    let (mut sink, mut source) = ws.split();
                    loop {
                        tokio::select! {
                            _ = kicked.recv() => break,
                            frame = rx.recv() => match frame {
                                Ok(f) => if sink.send(Message::text(f.as_str())).await.is_err() { break },
                                Err(broadcast::error::RecvError::Lagged(n)) => tracing::warn!(lost = n, "feed client lagged"),
                                Err(_) => break,
                            },
                            incoming = source.next() => match incoming {
                                Some(Ok(Message::Text(t))) if t.contains("transactionSubscribe") => {
                                    let _ = sink.send(Message::text(r#"{"jsonrpc":"2.0","result":1,"id":1}"#)).await;
                                }
                                Some(Ok(_)) => {}
                                _ => break,
                            },
                        }
                    }
                    clients.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Ok(server)
    }

    /// `ws://addr`.
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Sends a frame to every connected client. Returns how many received it.
    pub fn publish(&self, frame: String) -> usize {
        self.tx.send(Arc::new(frame)).unwrap_or(0)
    }

    /// Drops every connection (the feed going away), as a real feed does on restart.
    pub fn disconnect_all(&self) {
        let _ = self.kick.send(());
    }

    /// Connected clients.
    pub fn clients(&self) -> usize {
        self.clients.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` clients are connected.
    pub async fn wait_for_clients(&self, n: usize, timeout: std::time::Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.clients() < n {
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!("no feed client connected to {} within {timeout:?}", self.url());
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        Ok(())
    }
}

/// Splits a recorded frames file: JSON Lines, a JSON array, or the comma-separated body
/// of a JS array (the Helius capture format, trailing comma included).
pub fn parse_frames(text: &str) -> anyhow::Result<Vec<String>> {
    let trimmed = text.trim().trim_end_matches(',');
    let wrapped = if trimmed.starts_with('[') {
        trimmed.to_string()
    } else {
        format!("[{trimmed}]")
    };
    if let Ok(serde_json::Value::Array(items)) = serde_json::from_str(&wrapped) {
        return Ok(items.iter().map(|v| v.to_string()).collect());
    }
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| Ok(serde_json::from_str::<serde_json::Value>(l)?.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_files_in_three_shapes() {
        assert_eq!(parse_frames("{\"a\":1},\n{\"b\":2},\n").unwrap().len(), 2);
        assert_eq!(parse_frames("[{\"a\":1}]").unwrap().len(), 1);
        assert_eq!(parse_frames("{\"a\":1}\n{\"b\":2}\n").unwrap().len(), 2);
        assert!(parse_frames("{oops").is_err());
    }
}
