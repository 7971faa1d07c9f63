//! Test environment: real nats-servers (events and money) and redis-server on free
//! ports, streams set up on their classes' servers.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt;
use herald_pipeline::products::signals::fanout::{ChannelIndex, FanoutStage, UserIndex};
use herald_pipeline::products::signals::token_state::TokenState;
use herald_runtime::replica::Replica;
use herald_runtime::{run_stage, Stage, StageConfig};
use herald_schemas::subjects;
use herald_schemas::{Access, CallEvent, CallSource, Caller, Chain, ChannelStats, SignalsPrefs, User};
use herald_testkit::{LocalNats, LocalRedis};
use tokio_util::sync::CancellationToken;

pub struct Env {
    pub nats: LocalNats,
    pub redis: LocalRedis,
    /// A client of the events server.
    pub client: async_nats::Client,
    pub js: herald_runtime::Js,
    pub shutdown: CancellationToken,
}

impl Env {
    pub async fn start() -> Env {
        // before any stage registers its counters (handles made without a recorder
        // count nothing)
        herald_runtime::telemetry::install_metrics();
        let nats = LocalNats::start().expect("nats-server");
        let redis = LocalRedis::start().expect("redis-server");
        let js = herald_pipeline::app::compose::connect(&nats.servers_args()).await.unwrap();
        let client = js.events().client();
        herald_pipeline::app::compose::setup_all(&js, false, herald_runtime::setup::Replicas::Existing)
            .await
            .unwrap();
        Env {
            nats,
            redis,
            client,
            js,
            shutdown: CancellationToken::new(),
        }
    }

    pub async fn state(&self, accepted: Duration, rejected: Duration) -> TokenState {
        let client = redis::Client::open(self.redis.url()).unwrap();
        TokenState::new(redis::aio::ConnectionManager::new(client).await.unwrap(), accepted, rejected)
    }

    pub fn spawn<S: Stage>(&self, stage: S, stream: &str, filter: &str) -> tokio::task::JoinHandle<anyhow::Result<()>> {
        let cfg = StageConfig {
            ack_wait: Duration::from_secs(5),
            ..StageConfig::new(stream, S::NAME, vec![filter.to_string()])
        };
        tokio::spawn(run_stage(self.js.clone(), Arc::new(stage), cfg, self.shutdown.clone()))
    }

    /// Starts the fan-out stage with replicas of the users and channels buckets.
    pub async fn spawn_fanout(&self, state: TokenState) {
        let users = Replica::start(
            &self.js,
            &herald_pipeline::products::signals::fanout::USER_BUCKETS,
            UserIndex::default(),
            self.shutdown.clone(),
        )
        .await
        .unwrap();
        let channels = Replica::start(
            &self.js,
            &[subjects::CHANNELS_BUCKET],
            ChannelIndex::default(),
            self.shutdown.clone(),
        )
        .await
        .unwrap();
        self.spawn(
            FanoutStage {
                users,
                channels,
                state,
                require_subscription: false,
            },
            subjects::SIGNALS_STREAM,
            "herald.signals.>",
        );
    }

    /// Stores user `id` (chat `id`): the core record and signals preferences, as
    /// `edit` leaves them.
    pub async fn put_user(&self, id: i64, edit: impl FnOnce(&mut User, &mut SignalsPrefs)) {
        let (mut user, mut prefs) = (User::new(id, id, 0), SignalsPrefs::new(id));
        edit(&mut user, &mut prefs);
        let kv = self.js.get_key_value(subjects::USERS_BUCKET).await.unwrap();
        kv.put(id.to_string(), herald_schemas::encode(&user).into()).await.unwrap();
        let kv = self.js.get_key_value(subjects::SIGNALS_USERS_BUCKET).await.unwrap();
        kv.put(id.to_string(), herald_schemas::encode(&prefs).into()).await.unwrap();
    }

    /// Stores `access`.
    pub async fn put_access(&self, access: &Access) {
        let kv = self.js.get_key_value(subjects::ACCESS_BUCKET).await.unwrap();
        kv.put(access.user_id.to_string(), herald_schemas::encode(access).into())
            .await
            .unwrap();
    }

    /// Publishes a payload on a subject with a message id and waits for the ack.
    pub async fn publish(&self, subject: String, msg_id: &str, payload: Vec<u8>) {
        self.js
            .publish_with_id(subject, msg_id, payload.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }

    /// Every message currently in `stream` matching `filter`, waiting until at least
    /// `at_least` are there (or `timeout`), then a short quiet period to catch extras.
    pub async fn messages(&self, stream: &str, filter: &str, at_least: usize, timeout: Duration) -> Vec<jetstream::Message> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let n = self.count(stream, filter).await;
            if n >= at_least || tokio::time::Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        herald_runtime::reader::read(&self.js, stream, filter).await.unwrap()
    }

    pub async fn count(&self, stream: &str, filter: &str) -> usize {
        let s = self.js.get_stream(stream).await.unwrap();
        let info = s.info_with_subjects(filter).await.unwrap();
        let subjects: Vec<(String, usize)> = info.collect::<Vec<_>>().await.into_iter().map(|r| r.unwrap()).collect();
        subjects.iter().map(|(_, n)| n).sum()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub fn call(token: &str, caller: &str, stats: Option<(f64, f64)>, fdv: Option<f64>) -> CallEvent {
    CallEvent {
        v: 1,
        source_event_id: format!("{token}-{caller}"),
        chain: Chain::from("solana"),
        token: token.into(),
        symbol: Some("TST".into()),
        name: None,
        price_usd: Some(0.01),
        price_native: None,
        fdv_usd: fdv,
        caller: Caller {
            id: caller.into(),
            name: Some(format!("Channel {caller}")),
            source: CallSource::Feed,
        },
        caller_stats: stats.map(|(w, g)| ChannelStats {
            v: 1,
            win_rate: w,
            avg_gain_pct: g,
            calls: 10,
        }),
        links: vec![],
        origin_ts_ms: herald_schemas::now_ms(),
    }
}

/// The router and the products' inbox stages, driven directly (decide, then commit, as
/// the runner would), without consumers: one update in, every message it makes out.
pub struct Desk {
    pub router: herald_pipeline::core::router::Router,
    pub signals:
        herald_pipeline::products::signals::inbox::SignalsInbox<herald_pipeline::products::signals::tracking::embedded::EmbeddedStore>,
    pub payments: herald_pipeline::products::payments::inbox::PaymentsInbox,
    /// The core's operators' desk (`/admin stats|status`).
    pub ops: herald_pipeline::core::desk::Desk,
    pub users: async_nats::jetstream::kv::Store,
    pub access: async_nats::jetstream::kv::Store,
    pub ledger: herald_pipeline::core::ledger::Ledger,
}

/// The BIP-39 test vector: a valid deposit xpub.
pub const TEST_MNEMONIC: &str = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";

/// Decides, applies and commits one input as the runner would; the outputs.
pub async fn drive<S: Stage>(stage: &S, subject: &str, payload: &[u8], commit: bool) -> Vec<herald_runtime::Output> {
    let meta = herald_runtime::MsgMeta {
        subject: subject.to_string(),
        stream_sequence: 1,
        delivered: 1,
        published_ms: 0,
    };
    let input = stage.decode(payload).unwrap();
    let decision = match stage.decide(input, &meta).await.unwrap() {
        herald_runtime::Decision::Apply(effect) => stage.apply(effect, &meta).await.unwrap().decision,
        herald_runtime::Decision::Forward { outputs, commit } => herald_runtime::Decision::Forward { outputs, commit },
        herald_runtime::Decision::Drop { reason } => herald_runtime::Decision::Drop { reason },
    };
    match decision {
        herald_runtime::Decision::Apply(never) => match never {},
        herald_runtime::Decision::Forward { outputs, commit: c } => {
            if commit {
                stage.commit(c).await.unwrap();
            }
            outputs
        }
        herald_runtime::Decision::Drop { reason } => panic!("{}: dropped: {reason}", S::NAME),
    }
}

/// A private text message `text` from `user` as update `update_id` (Telegram's shape).
pub fn message(user: i64, update_id: i64, text: &str) -> Vec<u8> {
    serde_json::json!({"update_id": update_id, "message": {"message_id": update_id, "date": 0,
        "chat": {"id": user, "type": "private"}, "from": {"id": user, "is_bot": false, "first_name": "U"}, "text": text}})
    .to_string()
    .into_bytes()
}

/// `user` pressing the button carrying `data` under message 5, as update `update_id`.
pub fn press(user: i64, update_id: i64, data: &str) -> Vec<u8> {
    serde_json::json!({"update_id": update_id, "callback_query": {"id": format!("cb{update_id}"),
        "from": {"id": user, "is_bot": false, "first_name": "U"}, "chat_instance": "1", "data": data,
        "message": {"message_id": 5, "date": 0, "chat": {"id": user, "type": "private"}, "text": "..."}}})
    .to_string()
    .into_bytes()
}

/// Decides and applies one routed input as a redelivery would meet it: what the apply
/// step found, and the messages it made.
pub async fn drive_effect<S: Stage>(
    stage: &S,
    input: &herald_runtime::Output,
) -> (herald_runtime::Effect, Vec<herald_schemas::OutboundMessage>) {
    let meta = herald_runtime::MsgMeta {
        subject: input.subject.clone(),
        stream_sequence: 1,
        delivered: 2,
        published_ms: 0,
    };
    let decided = stage.decide(stage.decode(&input.payload).unwrap(), &meta).await.unwrap();
    let herald_runtime::Decision::Apply(effect) = decided else {
        panic!("{}: no apply step for this input", S::NAME);
    };
    let applied = stage.apply(effect, &meta).await.unwrap();
    let outputs = match applied.decision {
        herald_runtime::Decision::Forward { outputs, .. } => outputs,
        _ => Vec::new(),
    };
    let messages = outputs
        .iter()
        .filter(|o| o.subject.starts_with("herald.out."))
        .map(|o| herald_schemas::decode(&o.payload).unwrap())
        .collect();
    (applied.effect, messages)
}

impl Desk {
    /// Every registered product with its defaults (tiers daily, weekly, monthly,
    /// lifetime; a 3-day trial), `admins` as the admin ids.
    pub async fn open(env: &Env, admins: Vec<i64>) -> Desk {
        Self::open_with(env, admins, None).await
    }

    /// As [`Desk::open`], with `/withdraw` under `rules` (`None`: off).
    pub async fn open_with(env: &Env, admins: Vec<i64>, rules: Option<herald_pipeline::products::payments::withdraw::Rules>) -> Desk {
        use herald_pipeline::app::compose;
        use herald_pipeline::core::ledger::Ledger;
        use herald_pipeline::core::router::{Router, Routes};
        use herald_pipeline::products::payments::{self, wallet};
        let products = compose::all_products();
        let users = env.js.get_key_value(subjects::USERS_BUCKET).await.unwrap();
        let access = env.js.get_key_value(subjects::ACCESS_BUCKET).await.unwrap();
        let ledger = Ledger::open(env.js.clone()).await.unwrap();
        let xpub = wallet::account_xpub(TEST_MNEMONIC).unwrap();
        let withdraw = match rules {
            Some(rules) => Some(payments::withdraw::Withdrawals {
                rules,
                store: env.js.get_key_value(subjects::WITHDRAWALS_BUCKET).await.unwrap(),
                admins: admins.clone(),
            }),
            None => None,
        };
        let p = payments::Payments {
            wallet: wallet::DepositWallet::from_xpub(&xpub).unwrap(),
            addresses: env.js.get_key_value(subjects::WALLET_BUCKET).await.unwrap(),
            ledger: ledger.clone(),
            tokens: vec![("BUSD".into(), alloy::primitives::Address::repeat_byte(1))],
            tiers: payments::subscriptions::parse_tiers(&["daily:1:3".into(), "weekly:7:15".into(), "lifetime:0:300".into()]).unwrap(),
            coupons: env.js.get_key_value(subjects::COUPONS_BUCKET).await.unwrap(),
            withdraw,
            gateway: None,
        };
        Desk {
            router: Router {
                users: users.clone(),
                access: access.clone(),
                sessions: env.js.get_key_value(subjects::SESSIONS_BUCKET).await.unwrap(),
                admins,
                routes: Routes::new(&products).unwrap(),
                limits: None,
            },
            signals: herald_pipeline::products::signals::inbox::SignalsInbox {
                users: users.clone(),
                prefs: env.js.get_key_value(subjects::SIGNALS_USERS_BUCKET).await.unwrap(),
                calls: None,
                chains: herald_schemas::checks::ChainList::default(),
                presets: herald_pipeline::products::signals::presets::Presets {
                    kv: env
                        .js
                        .get_key_value(herald_pipeline::products::signals::presets::BUCKET)
                        .await
                        .unwrap(),
                },
            },
            payments: herald_pipeline::products::payments::inbox::PaymentsInbox {
                payments: Arc::new(p),
                users: users.clone(),
                access: access.clone(),
            },
            ops: herald_pipeline::core::desk::Desk {
                products: products.clone(),
                js: env.js.clone(),
                redis: None,
                consumers: compose::all_consumers(),
                broadcasts: herald_pipeline::core::broadcast::Broadcasts::open(&env.js).await.unwrap(),
            },
            users,
            access,
            ledger,
        }
    }

    /// Routes one update and runs the product it goes to: the messages it makes, the
    /// reply first.
    pub async fn send_all(&self, update: Vec<u8>) -> Vec<herald_schemas::OutboundMessage> {
        self.run(update, true).await
    }

    /// Routes one update and lets its product decide, without the product's commit (as
    /// when a crash comes before it).
    pub async fn decide_only(&self, update: Vec<u8>) -> Vec<herald_schemas::OutboundMessage> {
        self.run(update, false).await
    }

    async fn run(&self, update: Vec<u8>, commit: bool) -> Vec<herald_schemas::OutboundMessage> {
        self.run_raw(update, commit)
            .await
            .iter()
            .filter(|o| o.subject.starts_with("herald.out."))
            .map(|m| herald_schemas::decode(&m.payload).unwrap())
            .collect()
    }

    /// Routes one update and runs the product it goes to: every output, messages and
    /// events alike, as published.
    pub async fn run_raw(&self, update: Vec<u8>, commit: bool) -> Vec<herald_runtime::Output> {
        let mut out = Vec::new();
        for o in drive(&self.router, "herald.updates.message.1", &update, true).await {
            let product_outputs = if o.subject.starts_with("herald.cmd.signals.") {
                drive(&self.signals, &o.subject, &o.payload, commit).await
            } else if o.subject.starts_with("herald.cmd.payments.") {
                drive(&self.payments, &o.subject, &o.payload, commit).await
            } else if o.subject.starts_with("herald.cmd.desk.") {
                drive(&self.ops, &o.subject, &o.payload, commit).await
            } else {
                vec![o]
            };
            out.extend(product_outputs);
        }
        out
    }
}

impl Env {
    /// Waits until `consumer` of `stream` has been delivered everything the stream holds
    /// and has acknowledged it all (a condition, not a sleep). Panics after 20 s.
    pub async fn drained(&self, stream: &str, consumer: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let mut s = self.js.get_stream(stream).await.unwrap();
            let last = s.info().await.unwrap().state.last_sequence;
            let mut c: jetstream::consumer::PullConsumer = s.get_consumer(consumer).await.unwrap();
            let info = c.info().await.unwrap();
            if info.num_pending == 0 && info.num_ack_pending == 0 && info.ack_floor.stream_sequence >= last {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{consumer} on {stream} not drained: {info:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A stage's own counter from the runtime's metrics (`herald_stage_out_total`, ...),
/// summed over its other labels.
pub fn stage_metric(metric: &str, stage: &str) -> f64 {
    let text = herald_runtime::telemetry::install_metrics().render();
    herald_runtime::metric::sum_in(&text, metric, &[("stage", stage)])
}
