//! drand HTTP relays: beacon `R` fetched with failover, trusted only once verified.
//!
//! Each relay is asked `GET <relay>/<chain hash>/info` first, and refused for good if
//! its chain info is not the pinned one. Then `GET <relay>/<chain hash>/public/<R>`:
//! a beacon of another round, or one that does not verify, is refused and the next
//! relay is tried. Never "latest", never another round: if no relay has `R` yet, the
//! draw waits.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use herald_draw::beacon::{self, Beacon, ChainInfo};

/// The configured relays and the pinned chain.
pub struct Relays {
    http: reqwest::Client,
    urls: Vec<String>,
    chain: ChainInfo,
    /// Relays whose `/info` matched the pinned chain.
    checked: Mutex<HashSet<String>>,
}

/// Why a relay gave no usable beacon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Its `/info` is another chain.
    WrongChain,
    /// It does not have the round yet (404 / 425).
    NotYet,
    /// A beacon that is not round `R`, or does not verify.
    BadBeacon(String),
    /// Unreachable, 5xx, not JSON.
    Unavailable(String),
}

impl Refusal {
    /// The metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::WrongChain => "wrong_chain",
            Refusal::NotYet => "not_yet",
            Refusal::BadBeacon(_) => "bad_beacon",
            Refusal::Unavailable(_) => "unavailable",
        }
    }
}

impl Relays {
    /// Relays at `urls` (base URLs, tried in order) serving `chain`.
    pub fn new(urls: Vec<String>, chain: ChainInfo) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("an HTTP client");
        Relays {
            http,
            urls: urls.into_iter().map(|u| u.trim_end_matches('/').to_string()).collect(),
            chain,
            checked: Mutex::new(HashSet::new()),
        }
    }

    /// Beacon `round`, verified, from the first relay that has it.
    ///
    /// Errors: every relay's refusal, in order.
    pub async fn beacon(&self, round: u64) -> Result<Beacon, Vec<(String, Refusal)>> {
        let mut refusals = Vec::new();
        for url in &self.urls {
            match self.ask_relay(url, round).await {
                Ok(b) => return Ok(b),
                Err(r) => {
                    metrics::counter!(super::metrics::BEACON_REFUSALS.name, "reason" => r.label()).increment(1);
                    tracing::warn!(relay = %url, round, refusal = ?r, "drand relay gave no usable beacon");
                    refusals.push((url.clone(), r));
                }
            }
        }
        Err(refusals)
    }

    async fn ask_relay(&self, url: &str, round: u64) -> Result<Beacon, Refusal> {
        let base = format!("{url}/{}", self.chain.hash);
        if !self.checked.lock().expect("relays lock").contains(url) {
            let info: ChainInfo = self.get(&format!("{base}/info")).await?;
            if info != self.chain {
                return Err(Refusal::WrongChain);
            }
            self.checked.lock().expect("relays lock").insert(url.to_string());
        }
        let b: Beacon = self.get(&format!("{base}/public/{round}")).await?;
        beacon::verify_round(&self.chain, round, &b).map_err(|e| Refusal::BadBeacon(e.to_string()))?;
        Ok(b)
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, Refusal> {
        let resp = self.http.get(url).send().await.map_err(|e| Refusal::Unavailable(e.to_string()))?;
        match resp.status().as_u16() {
            200 => resp.json().await.map_err(|e| Refusal::Unavailable(format!("not JSON: {e}"))),
            404 | 425 => Err(Refusal::NotYet),
            s => Err(Refusal::Unavailable(format!("HTTP {s}"))),
        }
    }
}
