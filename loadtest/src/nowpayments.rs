//! A NOWPayments stand-in, written from their public API documentation (the Postman
//! collection "NOWPayments API": `POST /v1/invoice`, and "Instant Payments
//! Notifications"), apart from Herald's own code so that each checks the other:
//!
//! - `POST /v1/invoice` with `x-api-key`: a wrong or missing key answers 403 with their
//!   error shape (`{"status": false, "statusCode": 403, "code": "INVALID_API_KEY",
//!   "message": "Invalid api key"}`); a body without `price_amount` or
//!   `price_currency` answers 400 (`INVALID_REQUEST_PARAMS`); otherwise 200 with the
//!   invoice (`id` and `price_amount` as strings, as their example shows, and an
//!   `invoice_url` on nowpayments.io).
//! - IPNs: [`NowPayments::notify`] posts a payment's status to the invoice's
//!   `ipn_callback_url` with `x-nowpayments-sig` = hex HMAC-SHA512 of the body with its
//!   keys sorted, under the IPN secret; faults: no signature, a wrong one.
//! - Faults of the API: the next N requests answer 500, or every answer waits.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha512;

/// An invoice the stand-in made.
#[derive(Debug, Clone)]
pub struct Invoice {
    pub id: u64,
    pub order_id: String,
    /// As the request wrote it (a JSON number's text).
    pub price_amount: String,
    pub ipn_callback_url: String,
}

#[derive(Default)]
struct State {
    invoices: Vec<Invoice>,
    fail_next: u32,
    delay: Duration,
    requests: u64,
}

/// How an IPN is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signature {
    Good,
    Missing,
    /// Signed under another secret.
    Wrong,
}

/// The running stand-in.
pub struct NowPayments {
    url: String,
    api_key: String,
    ipn_secret: String,
    state: Arc<Mutex<State>>,
    http: reqwest::Client,
    _server: tokio::task::JoinHandle<()>,
}

fn error(code: StatusCode, name: &str, message: &str) -> (StatusCode, axum::Json<Value>) {
    (
        code,
        axum::Json(json!({"status": false, "statusCode": code.as_u16(), "code": name, "message": message})),
    )
}

/// The keys of every object sorted, as their documentation's PHP example signs.
fn sort_keys(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut pairs: Vec<(&String, &Value)> = m.iter().collect();
            pairs.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(pairs.into_iter().map(|(k, v)| (k.clone(), sort_keys(v))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(sort_keys).collect()),
        other => other.clone(),
    }
}

fn hmac_hex(secret: &str, body: &Value) -> String {
    let mut mac = Hmac::<Sha512>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(sort_keys(body).to_string().as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

impl NowPayments {
    /// Starts on a free local port.
    ///
    /// Errors: no port could be bound.
    pub async fn start(api_key: &str, ipn_secret: &str) -> anyhow::Result<Self> {
        let state = Arc::new(Mutex::new(State::default()));
        let (key, st) = (api_key.to_string(), state.clone());
        let app = axum::Router::new().route(
            "/v1/invoice",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let (key, st) = (key.clone(), st.clone());
                async move { create_invoice(&key, &st, &headers, &body).await }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(NowPayments {
            url,
            api_key: api_key.into(),
            ipn_secret: ipn_secret.into(),
            state,
            http: reqwest::Client::new(),
            _server: server,
        })
    }

    /// What `--nowpayments-api-url` takes.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// The invoices made so far.
    pub fn invoices(&self) -> Vec<Invoice> {
        self.state.lock().unwrap().invoices.clone()
    }

    /// Invoice requests received (answered or not).
    pub fn requests(&self) -> u64 {
        self.state.lock().unwrap().requests
    }

    /// The next `n` API requests answer 500.
    pub fn fail_next(&self, n: u32) {
        self.state.lock().unwrap().fail_next = n;
    }

    /// Every API answer waits `d` first.
    pub fn slow(&self, d: Duration) {
        self.state.lock().unwrap().delay = d;
    }

    /// The IPN NOWPayments sends for payment `payment_id` of `invoice` in `status`, with
    /// `actually_paid` (in `pay_currency` btc): its body.
    pub fn ipn_body(invoice: &Invoice, payment_id: u64, status: &str, actually_paid: &str) -> Value {
        let number = |s: &str| serde_json::from_str::<Value>(s).unwrap_or(Value::Null);
        json!({
            "payment_id": payment_id,
            "invoice_id": invoice.id,
            "payment_status": status,
            "pay_address": "bc1qexampleaddressxxxxxxxxxxxxxxxxxxxxxxx",
            "price_amount": number(&invoice.price_amount),
            "price_currency": "usd",
            "pay_amount": 0.00042,
            "actually_paid": number(actually_paid),
            "actually_paid_at_fiat": 0,
            "pay_currency": "btc",
            "order_id": invoice.order_id,
            "order_description": "Balance top-up",
            "purchase_id": "5312822613",
            "outcome_amount": 0.00041,
            "outcome_currency": "btc",
            "fee": {"currency": "btc", "depositFee": 0, "withdrawalFee": 0, "serviceFee": 0},
            "created_at": "2026-12-04T12:00:00.000Z",
            "updated_at": "2026-12-04T12:05:00.000Z"
        })
    }

    /// Posts `body` to `invoice`'s callback signed as `signature` says; the HTTP status
    /// Herald answered.
    ///
    /// Errors: the callback could not be reached.
    pub async fn notify(&self, invoice: &Invoice, body: &Value, signature: Signature) -> anyhow::Result<u16> {
        let mut req = self
            .http
            .post(&invoice.ipn_callback_url)
            .header("content-type", "application/json")
            .body(body.to_string());
        match signature {
            Signature::Good => req = req.header("x-nowpayments-sig", hmac_hex(&self.ipn_secret, body)),
            Signature::Wrong => req = req.header("x-nowpayments-sig", hmac_hex("another secret", body)),
            Signature::Missing => {}
        }
        Ok(req.send().await?.status().as_u16())
    }
}

async fn create_invoice(key: &str, state: &Mutex<State>, headers: &HeaderMap, body: &[u8]) -> (StatusCode, axum::Json<Value>) {
    let delay = {
        let mut s = state.lock().unwrap();
        s.requests += 1;
        s.delay
    };
    tokio::time::sleep(delay).await;
    {
        let mut s = state.lock().unwrap();
        if s.fail_next > 0 {
            s.fail_next -= 1;
            return error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", "Internal server error");
        }
    }
    if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(key) {
        return error(StatusCode::FORBIDDEN, "INVALID_API_KEY", "Invalid api key");
    }
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return error(StatusCode::BAD_REQUEST, "INVALID_REQUEST_PARAMS", "body is not JSON");
    };
    let (Some(price), Some(currency)) = (req.get("price_amount").filter(|p| p.is_number()), req["price_currency"].as_str()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST_PARAMS",
            "price_amount and price_currency are required",
        );
    };
    let mut s = state.lock().unwrap();
    let id = 4_522_625_843 + s.invoices.len() as u64;
    let invoice = Invoice {
        id,
        order_id: req["order_id"].as_str().unwrap_or_default().to_string(),
        price_amount: price.to_string(),
        ipn_callback_url: req["ipn_callback_url"].as_str().unwrap_or_default().to_string(),
    };
    s.invoices.push(invoice.clone());
    (
        StatusCode::OK,
        axum::Json(json!({
            "id": id.to_string(),
            "order_id": invoice.order_id,
            "order_description": req["order_description"],
            "price_amount": invoice.price_amount,
            "price_currency": currency,
            "pay_currency": null,
            "ipn_callback_url": invoice.ipn_callback_url,
            "invoice_url": format!("https://nowpayments.io/payment/?iid={id}"),
            "success_url": null,
            "cancel_url": null,
            "created_at": "2026-12-04T12:00:00.000Z",
            "updated_at": "2026-12-04T12:00:00.000Z"
        })),
    )
}
