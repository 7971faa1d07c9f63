//! A DexScreener poller for tracked tokens: batched requests to
//! `GET {base}/latest/dex/tokens/{addr1,addr2,...}` (up to 30 addresses each, the API's
//! limit), rate limited (100 calls/min by default), backing off on 429 (honouring
//! `Retry-After`) and 5xx; each token's price comes from its most liquid pair and is
//! published as a [`PriceUpdate`] (`source = "dexscreener"`). A malformed answer is an
//! error in the log and a metric; the poller keeps going.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::{Quota, RateLimiter};
use herald_schemas::{Chain, PriceUpdate};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use herald_runtime::{publish_all, Output};

/// Addresses per request (DexScreener's documented maximum).
pub const BATCH: usize = 30;

#[derive(Deserialize)]
struct Response {
    #[serde(default)]
    pairs: Option<Vec<Pair>>,
}

#[derive(Deserialize)]
struct Pair {
    #[serde(rename = "chainId")]
    chain_id: String,
    #[serde(rename = "baseToken")]
    base_token: Token,
    #[serde(rename = "priceUsd", default)]
    price_usd: Option<String>,
    #[serde(default)]
    liquidity: Option<Liquidity>,
}

#[derive(Deserialize)]
struct Token {
    address: String,
}

#[derive(Deserialize)]
struct Liquidity {
    #[serde(default)]
    usd: Option<f64>,
}

/// Prices from one response: for each base token, the USD price of its most liquid pair.
///
/// Errors: not JSON of the documented shape.
///
/// ```
/// let body = br#"{"pairs":[{"chainId":"solana","baseToken":{"address":"T"},"priceUsd":"0.5","liquidity":{"usd":10}}]}"#;
/// let prices = herald_pipeline::products::signals::sources::dexscreener::parse_prices(body).unwrap();
/// assert_eq!(prices[0].2, 0.5);
/// ```
pub fn parse_prices(body: &[u8]) -> Result<Vec<(Chain, String, f64)>, String> {
    let r: Response = serde_json::from_slice(body).map_err(|e| format!("malformed DexScreener answer: {e}"))?;
    let mut best: HashMap<(String, String), (f64, f64)> = HashMap::new();
    for p in r.pairs.unwrap_or_default() {
        let Some(price) = p
            .price_usd
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v > 0.0)
        else {
            continue;
        };
        let liquidity = p.liquidity.and_then(|l| l.usd).unwrap_or(0.0);
        let e = best.entry((p.chain_id, p.base_token.address)).or_insert((price, liquidity));
        if liquidity > e.1 {
            *e = (price, liquidity);
        }
    }
    let mut out: Vec<(Chain, String, f64)> = best
        .into_iter()
        .map(|((chain, token), (price, _))| (Chain::from(chain), token, price))
        .collect();
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}

/// The poller's settings.
#[derive(Debug, Clone)]
pub struct PollerConfig {
    /// API base URL (`https://api.dexscreener.com`).
    pub base_url: String,
    /// Requests per minute at most.
    pub per_minute: u32,
    /// Pause between rounds over all tracked tokens.
    pub interval: Duration,
}

/// Polls until `shutdown`: each round asks `tokens()` for the tracked tokens and fetches
/// their prices in batches.
pub async fn run(cfg: PollerConfig, js: herald_runtime::Js, tokens: impl Fn() -> Vec<String> + Send, shutdown: CancellationToken) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a reqwest client");
    let limiter = RateLimiter::direct(Quota::per_minute(NonZeroU32::new(cfg.per_minute.max(1)).expect("max(1)")));
    let mut backoff = Duration::ZERO;
    while !shutdown.is_cancelled() {
        let all = tokens();
        for batch in all.chunks(BATCH) {
            if shutdown.is_cancelled() {
                return;
            }
            if !backoff.is_zero() {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
            }
            limiter.until_ready().await;
            let url = format!("{}/latest/dex/tokens/{}", cfg.base_url.trim_end_matches('/'), batch.join(","));
            backoff = match fetch(&http, &url).await {
                Ok(body) => match parse_prices(&body) {
                    Ok(prices) => {
                        publish(&js, prices).await;
                        Duration::ZERO
                    }
                    Err(e) => {
                        metrics::counter!(super::super::metrics::DEXSCREENER_ERRORS.name, "kind" => "malformed").increment(1);
                        tracing::error!(error = %e, "DexScreener answer skipped");
                        Duration::ZERO
                    }
                },
                Err(Retry(wait)) => {
                    metrics::counter!(super::super::metrics::DEXSCREENER_ERRORS.name, "kind" => "retry").increment(1);
                    let next = wait.unwrap_or((backoff * 2).clamp(Duration::from_secs(1), Duration::from_secs(60)));
                    tracing::warn!(
                        wait_ms = next.as_millis() as u64,
                        "DexScreener asked to slow down or failed; backing off"
                    );
                    next
                }
            };
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(cfg.interval) => {}
        }
    }
}

/// A failed request worth retrying, with the server's `Retry-After` if it gave one.
struct Retry(Option<Duration>);

async fn fetch(http: &reqwest::Client, url: &str) -> Result<Vec<u8>, Retry> {
    let response = http.get(url).send().await.map_err(|_| Retry(None))?;
    let status = response.status();
    if status.as_u16() == 429 || status.is_server_error() {
        let after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .map(Duration::from_secs);
        return Err(Retry(after));
    }
    response.bytes().await.map(|b| b.to_vec()).map_err(|_| Retry(None))
}

async fn publish(js: &herald_runtime::Js, prices: Vec<(Chain, String, f64)>) {
    let ts_ms = herald_schemas::now_ms();
    let outputs = prices
        .into_iter()
        .map(|(chain, token, price_usd)| {
            let update = PriceUpdate {
                v: 1,
                chain,
                token,
                price_usd,
                source: "dexscreener".into(),
                ts_ms,
            };
            Output {
                subject: herald_schemas::subjects::price(update.chain.as_str()),
                msg_id: update.msg_id(),
                payload: herald_schemas::encode(&update),
            }
        })
        .collect();
    if let Err(e) = publish_all(js, outputs).await {
        tracing::warn!(error = %e, "publishing DexScreener prices failed");
    }
}
