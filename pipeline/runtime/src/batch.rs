//! Group commit for requests made concurrently: a stage's messages each ask for one
//! thing (a Redis claim, a set lookup), and a [`Batcher`] sends whatever has queued up
//! meanwhile as one batch, one round trip for all of them.
//!
//! No timer: a request that finds the batcher idle goes at once (a batch of one, so a
//! quiet stage waits for nothing); while a batch is out, the next requests queue up and go
//! together when it returns. Under load, batches grow to the number of messages in
//! flight (bounded by `max`). The stage's in-flight bound (`StageConfig::max_in_flight`)
//! bounds the queue: each request has a caller waiting for it.
//!
//! Counted as `herald_batches_total` and `herald_batched_requests_total` (label `batch`):
//! their ratio is the mean batch size.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> anyhow::Result<()> {
//! use herald_runtime::batch::Batcher;
//! // one "round trip" answers every queued request
//! let doubler = Batcher::new("doubler", 256, |xs: Vec<u32>| async move { Ok(xs.iter().map(|x| x * 2).collect()) });
//! let (a, b) = tokio::join!(doubler.call(2), doubler.call(21));
//! assert_eq!((a?, b?), (4, 42));
//! # Ok(()) }
//! ```

use std::future::Future;

use tokio::sync::{mpsc, oneshot};

type Reply<A> = oneshot::Sender<Result<A, String>>;

/// Sends requests `Q` in batches to a function that answers each with an `A`, in order.
pub struct Batcher<Q, A> {
    tx: mpsc::UnboundedSender<(Q, Reply<A>)>,
}

impl<Q, A> Clone for Batcher<Q, A> {
    fn clone(&self) -> Self {
        Batcher { tx: self.tx.clone() }
    }
}

impl<Q: Send + 'static, A: Send + 'static> Batcher<Q, A> {
    /// A batcher whose task (spawned on the current tokio runtime) runs `run` on up to
    /// `max` requests at a time, one batch after another. `run` must return one answer
    /// per request, in the requests' order; an error (or a wrong count) fails every
    /// request of the batch with its text. `name` labels the metrics.
    ///
    /// The task ends when every clone of the batcher is dropped.
    pub fn new<F, Fut>(name: &'static str, max: usize, run: F) -> Self
    where
        F: Fn(Vec<Q>) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<Vec<A>>> + Send,
    {
        let (tx, mut rx) = mpsc::unbounded_channel::<(Q, Reply<A>)>();
        let batches = metrics::counter!(crate::metric::BATCHES.name, "batch" => name);
        let requests = metrics::counter!(crate::metric::BATCHED_REQUESTS.name, "batch" => name);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(max);
            while rx.recv_many(&mut batch, max.max(1)).await > 0 {
                let (qs, replies): (Vec<Q>, Vec<Reply<A>>) = batch.drain(..).unzip();
                batches.increment(1);
                requests.increment(qs.len() as u64);
                let n = qs.len();
                match run(qs).await {
                    Ok(answers) if answers.len() == n => {
                        for (reply, a) in replies.into_iter().zip(answers) {
                            let _ = reply.send(Ok(a));
                        }
                    }
                    result => {
                        let error = match result {
                            Ok(answers) => format!("{name}: {} answers for {n} requests", answers.len()),
                            Err(e) => format!("{name}: {e:#}"),
                        };
                        for reply in replies {
                            let _ = reply.send(Err(error.clone()));
                        }
                    }
                }
            }
        });
        Batcher { tx }
    }

    /// Queues `q` and waits for its answer.
    ///
    /// Errors: the batch failed (its error's text), or the batcher's task is gone.
    pub async fn call(&self, q: Q) -> anyhow::Result<A> {
        let (tx, rx) = oneshot::channel();
        self.tx.send((q, tx)).map_err(|_| anyhow::anyhow!("batcher stopped"))?;
        rx.await
            .map_err(|_| anyhow::anyhow!("batcher dropped the request"))?
            .map_err(anyhow::Error::msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[tokio::test]
    async fn concurrent_requests_share_batches_and_keep_their_answers() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let b = Batcher::new("test", 64, move |xs: Vec<u64>| {
            seen.lock().unwrap().push(xs.len());
            async move {
                tokio::task::yield_now().await;
                Ok(xs.into_iter().map(|x| x + 1000).collect())
            }
        });
        let answers = futures::future::join_all((0..500).map(|i| b.call(i))).await;
        for (i, a) in answers.into_iter().enumerate() {
            assert_eq!(a.unwrap(), i as u64 + 1000);
        }
        let sizes = sizes.lock().unwrap();
        assert_eq!(sizes.iter().sum::<usize>(), 500);
        assert!(sizes.iter().all(|s| *s <= 64), "{sizes:?}");
        assert!(sizes.len() < 500, "requests made together went one by one: {sizes:?}");
    }

    #[tokio::test]
    async fn a_failed_batch_fails_each_of_its_requests() {
        let b = Batcher::new("failing", 8, |xs: Vec<u8>| async move {
            if xs.contains(&0) {
                anyhow::bail!("redis went away")
            }
            Ok(vec![(); xs.len() - 1]) // one answer short
        });
        let e = b.call(0).await.unwrap_err().to_string();
        assert_eq!(e, "failing: redis went away");
        let e = b.call(1).await.unwrap_err().to_string();
        assert_eq!(e, "failing: 0 answers for 1 requests");
    }
}
