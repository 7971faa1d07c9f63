//! A drand HTTP relay stand-in, shaped like drand's relay API
//! (<https://docs.drand.love/developer/http-api/>):
//!
//! - `GET /{chain hash}/info`: the chain info (v1 field names);
//! - `GET /{chain hash}/public/{round}`: `{round, randomness, signature}`, or 404 for a
//!   round not yet produced (as drand's relays answer a future round) or unknown;
//! - `GET /chains`: the chain hashes served.
//!
//! It serves the recorded real beacons (`fixtures/drand_vectors.json`: quicknet and
//! the default chain, only the rounds recorded), and a test chain it signs itself
//! ([`TestChain`]), whose rounds appear on time, so a lottery under test can draw at
//! any time. [`Relay::set_fault`] makes it misbehave like a broken or hostile relay.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use herald_draw::beacon::{round_time, Beacon, ChainInfo};
use herald_draw::testchain::TestChain;
use serde_json::Value;

/// How the relay misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Serves what drand would.
    None,
    /// `/info` of another chain (another public key).
    WrongChain,
    /// Beacons whose signature is corrupted (randomness recomputed to match it).
    BadSignature,
    /// The beacon of the round after the one asked for.
    WrongRound,
    /// 503 for everything.
    Down,
}

struct Inner {
    test: TestChain,
    recorded: Vec<(ChainInfo, Vec<Beacon>)>,
    fault: Mutex<Fault>,
    /// Beacon requests answered, for tests.
    served: Mutex<Vec<u64>>,
}

/// A running relay.
#[derive(Clone)]
pub struct Relay {
    inner: Arc<Inner>,
    pub addr: SocketAddr,
}

/// The recorded chains and beacons of the fixtures.
pub fn recorded() -> Vec<(ChainInfo, Vec<Beacon>)> {
    let v: Value = serde_json::from_str(include_str!("../fixtures/drand_vectors.json")).expect("the fixture is JSON");
    ["quicknet", "default"]
        .iter()
        .map(|name| {
            let c = &v["chains"][name];
            let info: ChainInfo = match c.get("chain_info_v1") {
                Some(info) => serde_json::from_value(info.clone()).expect("chain info"),
                None => serde_json::from_str(c["chain_info_v1_json"].as_str().expect("chain info")).expect("chain info"),
            };
            let beacons: Vec<Beacon> = serde_json::from_value(v["beacons"][name].clone()).expect("beacons");
            (info, beacons)
        })
        .collect()
}

impl Relay {
    /// Starts the relay on `addr` with test chain `test`.
    ///
    /// Errors: the address cannot be bound.
    pub async fn start(addr: SocketAddr, test: TestChain) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner {
            test,
            recorded: recorded(),
            fault: Mutex::new(Fault::None),
            served: Mutex::new(Vec::new()),
        });
        let app = axum::Router::new()
            .route("/chains", axum::routing::get(chains))
            .route("/{hash}/info", axum::routing::get(info))
            .route("/{hash}/public/{round}", axum::routing::get(public))
            .with_state(inner.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Relay { inner, addr })
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The test chain's info (what the lottery under test is told to trust).
    pub fn test_chain(&self) -> &ChainInfo {
        &self.inner.test.info
    }

    /// `pipeline run` flags of a lottery drawing from this relay's test chain: closes
    /// every `period` from the epoch, `R` `beacon_delay` after each, `relays` asked in
    /// order (this relay's URL, or a list around it).
    pub fn lottery_args(&self, period: &str, beacon_delay: &str, relays: &[String]) -> Vec<String> {
        let chain = serde_json::to_string(self.test_chain()).expect("chain info serializes");
        [
            "--lottery-period",
            period,
            "--lottery-anchor",
            "0",
            "--lottery-beacon-delay",
            beacon_delay,
            "--lottery-test-chain-info",
            &chain,
            "--lottery-relays",
            &relays.join(","),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// Makes the relay misbehave (or behave again).
    pub fn set_fault(&self, fault: Fault) {
        *self.inner.fault.lock().expect("fault lock") = fault;
    }

    /// The rounds whose beacon it has served.
    pub fn served(&self) -> Vec<u64> {
        self.inner.served.lock().expect("served lock").clone()
    }
}

fn fault(s: &Inner) -> Fault {
    *s.fault.lock().expect("fault lock")
}

async fn chains(State(s): State<Arc<Inner>>) -> Response {
    let mut hashes = vec![s.test.info.hash.clone()];
    hashes.extend(s.recorded.iter().map(|(c, _)| c.hash.clone()));
    Json(hashes).into_response()
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "Not Found\n").into_response()
}

async fn info(State(s): State<Arc<Inner>>, Path(hash): Path<String>) -> Response {
    if fault(&s) == Fault::Down {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let mut info = if hash == s.test.info.hash {
        s.test.info.clone()
    } else if let Some((c, _)) = s.recorded.iter().find(|(c, _)| c.hash == hash) {
        c.clone()
    } else {
        return not_found();
    };
    if fault(&s) == Fault::WrongChain {
        info.public_key = TestChain::new([0xee; 32], info.genesis_time, info.period).info.public_key;
    }
    Json(info).into_response()
}

async fn public(State(s): State<Arc<Inner>>, Path((hash, round)): Path<(String, u64)>) -> Response {
    let fault = fault(&s);
    if fault == Fault::Down {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let asked = round;
    let round = if fault == Fault::WrongRound { round + 1 } else { round };
    let beacon = if hash == s.test.info.hash {
        let now = now_s();
        if round_time(&s.test.info, round) > now {
            return not_found(); // not produced yet
        }
        s.test.sign(round)
    } else {
        match s
            .recorded
            .iter()
            .find(|(c, _)| c.hash == hash)
            .and_then(|(_, bs)| bs.iter().find(|b| b.round == round))
        {
            Some(b) => b.clone(),
            None => return not_found(),
        }
    };
    let beacon = if fault == Fault::BadSignature { corrupt(beacon) } else { beacon };
    s.served.lock().expect("served lock").push(asked);
    Json(beacon).into_response()
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// One bit of the signature flipped, and the randomness recomputed from it, so only the
/// BLS check can tell.
fn corrupt(mut b: Beacon) -> Beacon {
    use sha2::Digest;
    let mut sig = hex::decode(&b.signature).unwrap_or_default();
    if let Some(x) = sig.get_mut(10) {
        *x ^= 0x01;
    }
    b.randomness = hex::encode(sha2::Sha256::digest(&sig));
    b.signature = hex::encode(&sig);
    b
}
