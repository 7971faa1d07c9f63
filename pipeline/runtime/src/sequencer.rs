//! In-order processing per key within a stage's concurrent window: messages with the
//! same key (a user's subject) are processed one after another, in delivery order,
//! while other keys run in parallel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// Hands out turns per key. Clone to share.
#[derive(Clone, Default)]
pub struct Sequencer {
    latest: Arc<Mutex<Latest>>,
}

#[derive(Default)]
struct Latest {
    issued: u64,
    by_key: HashMap<String, (u64, oneshot::Receiver<()>)>,
}

/// A place in a key's line: [`Turn::wait`] returns once every earlier turn of the key
/// is dropped; dropping this one lets the next go.
pub struct Turn {
    sequencer: Sequencer,
    key: String,
    number: u64,
    previous: Option<oneshot::Receiver<()>>,
    _done: oneshot::Sender<()>,
}

impl Sequencer {
    /// Takes the next turn for `key`. Call in delivery order (it does not wait).
    pub fn enqueue(&self, key: &str) -> Turn {
        let (done, next) = oneshot::channel();
        let mut latest = self.latest.lock().expect("sequencer lock");
        latest.issued += 1;
        let number = latest.issued;
        let previous = latest.by_key.insert(key.to_string(), (number, next)).map(|(_, rx)| rx);
        Turn {
            sequencer: self.clone(),
            key: key.to_string(),
            number,
            previous,
            _done: done,
        }
    }

    /// Keys with a turn outstanding.
    pub fn len(&self) -> usize {
        self.latest.lock().expect("sequencer lock").by_key.len()
    }

    /// No key has a turn outstanding.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Turn {
    /// Waits until every earlier turn of this key is over.
    pub async fn wait(&mut self) {
        if let Some(previous) = self.previous.take() {
            // a dropped sender (the earlier turn ended) is the signal
            let _ = previous.await;
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut latest = self.sequencer.latest.lock().expect("sequencer lock");
        if latest.by_key.get(&self.key).is_some_and(|(n, _)| *n == self.number) {
            latest.by_key.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_key_in_order_other_keys_free_and_nothing_kept() {
        let seq = Sequencer::default();
        let mut a1 = seq.enqueue("a");
        let mut a2 = seq.enqueue("a");
        let mut b1 = seq.enqueue("b");
        a1.wait().await;
        b1.wait().await; // not behind a1
        let waiting = tokio::spawn(async move {
            a2.wait().await;
            a2
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "a2 waits for a1");
        drop(a1);
        let a2 = waiting.await.unwrap();
        drop(a2);
        drop(b1);
        assert!(seq.is_empty(), "finished keys are forgotten");
    }
}
