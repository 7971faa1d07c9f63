//! Stages as values: a product hands out [`StageHandle`]s; `pipeline run` runs them and
//! the compliance harness runs the same ones with [`Faults`] injected.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::classes::Js;

use crate::stage::{run_stage, Applied, Decision, Effect, MsgMeta, Stage, StageConfig, StageError};

type Runner = Box<dyn FnOnce(Js, StageConfig, CancellationToken, Option<Arc<Faults>>) -> BoxFuture<'static, anyhow::Result<()>> + Send>;

/// A stage with where it consumes, ready to run.
///
/// ```no_run
/// # use herald_runtime::{Decision, MsgMeta, Stage, StageConfig, StageError, StageHandle};
/// # struct Echo;
/// # impl Stage for Echo {
/// #     const NAME: &'static str = "echo";
/// #     type Input = Vec<u8>;
/// #     type Commit = ();
/// #     type Effect = std::convert::Infallible;
/// #     fn decode(&self, p: &[u8]) -> Result<Vec<u8>, String> { Ok(p.to_vec()) }
/// #     async fn decide(&self, _: Vec<u8>, _: &MsgMeta) -> Result<Decision<()>, StageError> { Ok(Decision::Drop { reason: "demo" }) }
/// #     async fn commit(&self, _: ()) -> Result<(), StageError> { Ok(()) }
/// # }
/// # async fn demo(js: herald_runtime::Js) -> anyhow::Result<()> {
/// let handle = StageHandle::new(Echo, StageConfig::new("DEMO", "echo", vec!["demo.>".into()]))
///     .with_sample("demo.in", b"hello".to_vec());
/// handle.run(js, tokio_util::sync::CancellationToken::new()).await
/// # }
/// ```
pub struct StageHandle {
    /// The stage's name ([`Stage::NAME`]): metrics label, durable consumer, DLQ subject.
    pub name: &'static str,
    pub config: StageConfig,
    /// A valid input `(subject, payload)`: the compliance harness feeds it to the stage.
    pub sample: Option<(String, Vec<u8>)>,
    runner: Runner,
}

impl StageHandle {
    /// `stage` on the consumer `config` describes.
    pub fn new<S: Stage>(stage: S, config: StageConfig) -> Self {
        let stage = Arc::new(stage);
        StageHandle {
            name: S::NAME,
            config,
            sample: None,
            runner: Box::new(move |js, config, shutdown, faults| {
                Box::pin(async move {
                    match faults {
                        None => run_stage(js, stage, config, shutdown).await,
                        Some(faults) => run_stage(js, Arc::new(Faulty { inner: stage, faults }), config, shutdown).await,
                    }
                })
            }),
        }
    }

    /// Gives the compliance harness a valid input for this stage.
    pub fn with_sample(mut self, subject: impl Into<String>, payload: Vec<u8>) -> Self {
        self.sample = Some((subject.into(), payload));
        self
    }

    /// Runs the stage until `shutdown` (see [`run_stage`]).
    pub fn run(self, js: Js, shutdown: CancellationToken) -> BoxFuture<'static, anyhow::Result<()>> {
        (self.runner)(js, self.config, shutdown, None)
    }

    /// Runs the stage with `faults` injected into its decisions and commits.
    pub fn run_with_faults(self, js: Js, shutdown: CancellationToken, faults: Arc<Faults>) -> BoxFuture<'static, anyhow::Result<()>> {
        (self.runner)(js, self.config, shutdown, Some(faults))
    }
}

impl std::fmt::Debug for StageHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageHandle")
            .field("name", &self.name)
            .field("config", &self.config)
            .finish()
    }
}

/// Failures to inject into a stage, and what it output, for the compliance harness.
#[derive(Debug, Default)]
pub struct Faults {
    /// The next this many decisions fail as transient (a dependency down).
    pub transient: AtomicU32,
    /// The next this many successful commits report a transient failure afterwards, as
    /// if the ack were lost: the input is redelivered with its commit already done.
    pub lose_ack: AtomicU32,
    /// Per input (stream sequence), what each delivery decided: the subjects and message
    /// ids to publish, or `None` for a drop.
    outputs: Mutex<HashMap<u64, Vec<Option<Vec<String>>>>>,
    /// Per input, what each apply step found.
    effects: Mutex<HashMap<u64, Vec<Effect>>>,
}

impl Faults {
    /// What each delivery of input `stream_sequence` decided, in delivery order:
    /// `Some(subject and message id of each output)` for `Forward`, `None` for `Drop`.
    pub fn outputs(&self, stream_sequence: u64) -> Vec<Option<Vec<String>>> {
        self.outputs
            .lock()
            .expect("faults lock")
            .get(&stream_sequence)
            .cloned()
            .unwrap_or_default()
    }

    /// What each apply step run for input `stream_sequence` found, in delivery order
    /// (empty: the stage decided without one).
    pub fn effects(&self, stream_sequence: u64) -> Vec<Effect> {
        self.effects
            .lock()
            .expect("faults lock")
            .get(&stream_sequence)
            .cloned()
            .unwrap_or_default()
    }

    fn record<C, E>(&self, stream_sequence: u64, decision: &Decision<C, E>) {
        let ids = match decision {
            Decision::Forward { outputs, .. } => Some(outputs.iter().map(|o| format!("{} {}", o.subject, o.msg_id)).collect()),
            Decision::Drop { .. } => None,
            Decision::Apply(_) => return,
        };
        self.outputs
            .lock()
            .expect("faults lock")
            .entry(stream_sequence)
            .or_default()
            .push(ids);
    }

    fn take(counter: &AtomicU32) -> bool {
        counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// A stage with [`Faults`] around it.
struct Faulty<S> {
    inner: Arc<S>,
    faults: Arc<Faults>,
}

impl<S: Stage> Stage for Faulty<S> {
    const NAME: &'static str = S::NAME;
    type Input = S::Input;
    type Commit = S::Commit;
    type Effect = S::Effect;

    fn decode(&self, payload: &[u8]) -> Result<S::Input, String> {
        self.inner.decode(payload)
    }

    async fn decide(&self, input: S::Input, meta: &MsgMeta) -> Result<Decision<S::Commit, S::Effect>, StageError> {
        if Faults::take(&self.faults.transient) {
            return Err(StageError::Transient(anyhow::anyhow!("injected transient failure")));
        }
        let decision = self.inner.decide(input, meta).await?;
        self.faults.record(meta.stream_sequence, &decision);
        Ok(decision)
    }

    async fn apply(&self, effect: S::Effect, meta: &MsgMeta) -> Result<Applied<S::Commit>, StageError> {
        let applied = self.inner.apply(effect, meta).await?;
        self.faults
            .effects
            .lock()
            .expect("faults lock")
            .entry(meta.stream_sequence)
            .or_default()
            .push(applied.effect);
        self.faults.record(meta.stream_sequence, &applied.decision);
        Ok(applied)
    }

    async fn commit(&self, commit: S::Commit) -> Result<(), StageError> {
        self.inner.commit(commit).await?;
        if Faults::take(&self.faults.lose_ack) {
            return Err(StageError::Transient(anyhow::anyhow!("injected: ack lost after commit")));
        }
        Ok(())
    }
}
