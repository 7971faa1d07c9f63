//! The DexScreener poller against the real response format served locally, with a 429
//! and a malformed answer on the way: clear errors, the poller keeps going.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use common::Env;
use herald_pipeline::products::signals::sources::dexscreener::{self, parse_prices, PollerConfig};
use herald_schemas::{subjects, PriceUpdate};
use tokio_util::sync::CancellationToken;

const FIXTURE: &str = include_str!("fixtures/latest_dex_tokens_response.json");
const TOKEN: &str = "inj19dtllzcquads0hu3ykda9m58llupksqwekkfnw";

#[test]
fn the_most_liquid_pair_gives_the_price() {
    let prices = parse_prices(FIXTURE.as_bytes()).unwrap();
    assert_eq!(prices.len(), 1);
    assert_eq!(
        (prices[0].0.as_str(), prices[0].1.as_str(), prices[0].2),
        ("injective", TOKEN, 0.004531)
    );
    assert!(parse_prices(b"{oops").unwrap_err().starts_with("malformed DexScreener answer"));
    assert!(parse_prices(br#"{"schemaVersion":"1.0.0","pairs":null}"#).unwrap().is_empty());
}

#[tokio::test]
async fn the_poller_survives_429s_and_malformed_answers() {
    let env = Env::start().await;
    let hits = Arc::new(AtomicUsize::new(0));
    let seen_paths = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let (h, paths) = (hits.clone(), seen_paths.clone());
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let n = h.fetch_add(1, Ordering::SeqCst);
        paths.lock().unwrap().push(uri.path().to_string());
        async move {
            match n {
                0 => (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], String::new()).into_response(),
                1 => (StatusCode::OK, "{oops").into_response(),
                _ => (StatusCode::OK, [("content-type", "application/json")], FIXTURE).into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let shutdown = CancellationToken::new();
    let cfg = PollerConfig {
        base_url,
        per_minute: 6000,
        interval: Duration::from_millis(100),
    };
    let poller = tokio::spawn(dexscreener::run(cfg, env.js.clone(), || vec![TOKEN.to_string()], shutdown.clone()));
    let msgs = env
        .messages(subjects::PRICES_STREAM, "herald.prices.>", 1, Duration::from_secs(15))
        .await;
    shutdown.cancel();
    poller.await.unwrap();
    let update: PriceUpdate = herald_schemas::decode(&msgs[0].payload).unwrap();
    assert_eq!(
        (
            update.chain.as_str(),
            update.token.as_str(),
            update.price_usd,
            update.source.as_str()
        ),
        ("injective", TOKEN, 0.004531, "dexscreener")
    );
    assert!(hits.load(Ordering::SeqCst) >= 3, "a 429, a malformed answer, then prices");
    assert_eq!(seen_paths.lock().unwrap()[0], format!("/latest/dex/tokens/{TOKEN}"));
}
