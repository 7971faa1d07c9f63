//! The IPN endpoint (`POST /nowpayments/ipn`): checks the signature, reads the body and
//! publishes it, verified, on `herald.gateway.nowpayments.<user>` (GATEWAY, money
//! class), answering 200 only once the money server has acknowledged it. NOWPayments
//! retries an IPN that did not get a 2xx, so nothing acknowledged is lost, and the
//! stage's references make a retried or replayed one change nothing twice.
//!
//! | answer | when | stored |
//! |---|---|---|
//! | 401 | no `x-nowpayments-sig`, or one that is not the body's | nothing |
//! | 400 | signed but unreadable (no payment id, an order id that is not ours, a price not in USD) | nothing |
//! | 503 | the money server did not take it (NOWPayments sends it again) | nothing |
//! | 200 | published | the status, once per payment and status |

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use herald_schemas::{subjects, GatewayPayment};
use tokio_util::sync::CancellationToken;

use super::ipn::{self, Refused};
use super::order_user;
use crate::core::ledger::money::parse_usd;

/// What the endpoint needs: the IPN secret and where to publish.
pub struct IpnEndpoint {
    pub secret: zeroize::Zeroizing<Vec<u8>>,
    pub js: herald_runtime::Js,
}

fn count(outcome: &'static str) {
    metrics::counter!(super::super::metrics::GATEWAY_IPNS.name, "outcome" => outcome).increment(1);
}

/// The verified status as Herald's event, or why not.
pub fn event(secret: &[u8], body: &[u8], signature: Option<&str>) -> Result<GatewayPayment, Refused> {
    ipn::verify(secret, body, signature)?;
    let ipn = ipn::read(body)?;
    if !ipn.price_currency.eq_ignore_ascii_case("usd") {
        return Err(Refused::Malformed(format!("price_currency {:?}: our invoices are in usd", ipn.price_currency)));
    }
    let user_id = order_user(&ipn.order_id).ok_or_else(|| Refused::Malformed(format!("order_id {:?} is not ours", ipn.order_id)))?;
    let price = parse_usd(&ipn.price_amount).map_err(|_| Refused::Malformed(format!("price_amount {:?}", ipn.price_amount)))?;
    Ok(GatewayPayment {
        v: 1,
        gateway: "nowpayments".into(),
        payment_id: ipn.payment_id,
        status: ipn.status,
        order_id: ipn.order_id,
        user_id,
        price_usd: price.to_string(),
        actually_paid: ipn.actually_paid,
        pay_currency: ipn.pay_currency,
        received_ms: herald_schemas::now_ms(),
    })
}

async fn receive(axum::extract::State(e): axum::extract::State<Arc<IpnEndpoint>>, headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
    let signature = headers.get(ipn::SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    let payment = match event(&e.secret, &body, signature) {
        Ok(p) => p,
        Err(refused) => {
            let (code, outcome) = match &refused {
                Refused::NoSignature => (StatusCode::UNAUTHORIZED, "no_signature"),
                Refused::BadSignature => (StatusCode::UNAUTHORIZED, "bad_signature"),
                Refused::Malformed(_) => (StatusCode::BAD_REQUEST, "malformed"),
            };
            tracing::warn!(%refused, "NOWPayments IPN refused");
            count(outcome);
            return (code, format!("{refused}\n"));
        }
    };
    let subject = subjects::gateway_payment("nowpayments", payment.user_id);
    let msg_id = format!("nowpayments:{}:{}", payment.payment_id, payment.status);
    let published = match e.js.publish_with_id(subject, &msg_id, herald_schemas::encode(&payment).into()).await {
        Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
        Err(err) => Err(err.to_string()),
    };
    match published {
        Ok(()) => {
            count("accepted");
            (StatusCode::OK, "ok\n".into())
        }
        Err(why) => {
            tracing::warn!(error = %why, "NOWPayments IPN not stored; they will send it again");
            count("unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, "not stored, send it again\n".into())
        }
    }
}

/// Serves `POST /nowpayments/ipn` on `addr` until `shutdown`.
///
/// Errors: the address cannot be bound.
pub async fn serve(addr: std::net::SocketAddr, endpoint: Arc<IpnEndpoint>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let app = axum::Router::new()
        .route("/nowpayments/ipn", axum::routing::post(receive))
        .with_state(endpoint);
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("--nowpayments-ipn-addr {addr}: {e}"))?;
    tracing::info!(%addr, "NOWPayments IPNs taken on /nowpayments/ipn");
    axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await?;
    Ok(())
}
