//! NOWPayments (seed 001: fiat and crypto through a gateway): a hosted invoice page
//! that takes cards and 150+ coins, paid into the user's balance.
//!
//! ```text
//! /deposit or /subscribe -> [💳 NOWPayments] np:<usd> | np:sub:<tier>
//!   -> payments_inbox: POST /v1/invoice (order_id np-<user>-<update>) -> [Pay] link
//! NOWPayments -> POST /nowpayments/ipn (x-nowpayments-sig checked) [server]
//!   -> herald.gateway.nowpayments.<user> [GATEWAY, money]
//!   -> gateway_payments [stage]: finished credits the ledger once per payment id
//! ```
//!
//! Off unless `--nowpayments-api-key`, `--nowpayments-ipn-secret` and
//! `--nowpayments-callback-url` are all set.

pub mod api;
pub mod ipn;
pub mod server;
pub mod stage;

use alloy::primitives::U256;
use async_nats::jetstream::kv;
use herald_runtime::Effect;
use herald_schemas::{escape_html, Button};

use crate::core::kv_json;
use crate::core::ledger::money::{units, LEDGER_DECIMALS};
use crate::core::reply::Reply;

/// The flags.
#[derive(clap::Args, Debug, Clone)]
pub struct NowPaymentsArgs {
    /// NOWPayments API key (Dashboard -> Settings -> API keys).
    #[arg(long, env = "HERALD_NOWPAYMENTS_API_KEY", hide_env_values = true)]
    pub nowpayments_api_key: Option<String>,
    /// The IPN secret (Dashboard -> Settings -> Payments -> Instant payment notifications).
    #[arg(long, env = "HERALD_NOWPAYMENTS_IPN_SECRET", hide_env_values = true)]
    pub nowpayments_ipn_secret: Option<String>,
    /// Their API (the sandbox: https://api-sandbox.nowpayments.io).
    #[arg(long, env = "HERALD_NOWPAYMENTS_API_URL", default_value = "https://api.nowpayments.io")]
    pub nowpayments_api_url: String,
    /// The public URL NOWPayments posts IPNs to (this process's `/nowpayments/ipn`
    /// behind the proxy).
    #[arg(long, env = "HERALD_NOWPAYMENTS_CALLBACK_URL")]
    pub nowpayments_callback_url: Option<String>,
    /// Where this process listens for IPNs.
    #[arg(long, env = "HERALD_NOWPAYMENTS_IPN_ADDR", default_value = "0.0.0.0:8092")]
    pub nowpayments_ipn_addr: std::net::SocketAddr,
}

impl NowPaymentsArgs {
    /// Whether the gateway is on: key, secret and callback URL all set (an empty value,
    /// as docker-compose passes an unset variable, counts as unset).
    pub fn on(&self) -> bool {
        [&self.nowpayments_api_key, &self.nowpayments_ipn_secret, &self.nowpayments_callback_url]
            .iter()
            .all(|v| v.as_deref().is_some_and(|s| !s.trim().is_empty()))
    }
}

/// The user an order id (`np-<user>-<update id>`) was made for.
///
/// ```
/// use herald_pipeline::products::payments::nowpayments::order_user;
/// assert_eq!(order_user("np-42-7"), Some(42));
/// assert_eq!(order_user("ORDER-12345"), None);
/// ```
pub fn order_user(order_id: &str) -> Option<i64> {
    let (user, update) = order_id.strip_prefix("np-")?.split_once('-')?;
    update.parse::<i64>().ok()?;
    user.parse().ok().filter(|u| *u > 0)
}

/// The amounts `/deposit` offers through NOWPayments, USD.
pub const TOP_UPS: [u64; 3] = [10, 25, 50];

/// The invoice side: the API, the callback URL, the `herald_gateway` bucket.
pub struct Gateway {
    pub api: api::Api,
    pub callback_url: String,
    pub store: kv::Store,
}

/// The buttons that start a payment of `usd` (ledger units) for `what`, `np:<data>`.
pub fn buttons(offers: &[(String, String)]) -> Vec<Button> {
    offers
        .iter()
        .map(|(text, data)| Button {
            text: text.clone(),
            callback_data: format!("np:{data}"),
            url: None,
        })
        .collect()
}

impl Gateway {
    /// The invoice for `price` (ledger units) under `order_id`, made once: a redelivered
    /// press finds it (`inv.<order id>`) and shows the same page. A crash between their
    /// answer and our record makes a second invoice on the retry, unused and harmless.
    ///
    /// Returns the reply (a link button to the page) and whether the invoice was made now.
    ///
    /// Errors: NATS failed. Their API failing is a reply, not an error.
    pub async fn invoice(&self, price: U256, order_id: &str, what: &str) -> anyhow::Result<(Reply, Effect)> {
        let key = format!("inv.{order_id}");
        let (invoice, effect) = match kv_json::get::<api::Invoice>(&self.store, &key).await? {
            Some(inv) => (inv, Effect::AlreadyMade),
            None => match self.api.invoice(price, order_id, what, &self.callback_url).await {
                Ok(inv) => {
                    let stored = kv_json::update(&self.store, &key, |cur: Option<api::Invoice>| cur.is_none().then(|| inv.clone())).await?;
                    (stored.unwrap_or(inv), Effect::Made)
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), order_id, "NOWPayments invoice not made");
                    return Ok((Reply::plain("NOWPayments is not answering right now; try again in a minute."), Effect::NotMade));
                }
            },
        };
        let text = format!(
            "<b>{}</b>: {} USD through NOWPayments (card or crypto). Your balance is credited once the payment is final.",
            escape_html(what),
            units(price, LEDGER_DECIMALS)
        );
        Ok((Reply::with_buttons(text, vec![vec![Button::link("💳 Pay", invoice.invoice_url)]]), effect))
    }
}
