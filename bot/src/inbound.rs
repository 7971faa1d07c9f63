//! Inbound: Telegram updates -> `herald.updates.<kind>.<sender>`, raw, `update_id` as
//! message id.
//!
//! Long polling confirms an offset only after every update of the batch is acknowledged
//! by the UPDATES stream; after a crash Telegram hands the batch out again and the
//! stream's duplicate window drops what was already stored. In webhook mode Telegram
//! gets its 200 only after the ack, so it retries anything not stored.

use std::time::Duration;

use axum::{body::Bytes, extract::State, http::HeaderMap as HttpHeaders, http::StatusCode, routing::post, Router};
use herald_runtime::{dead_letter, DeadLetter};
use herald_schemas::subjects;
use serde_json::value::RawValue;
use teloxide::prelude::*;
use tokio_util::sync::CancellationToken;

use crate::config::{InboundArgs, TelegramArgs};

/// Header Telegram sets on webhook calls when `secret_token` was given to setWebhook.
pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// What to do with one raw update.
#[derive(Debug, PartialEq)]
pub enum Routing {
    /// Publish on `subject` with `Nats-Msg-Id` = update id.
    Publish {
        subject: String,
        update_id: i64,
        callback_query_id: Option<String>,
    },
    /// Dead-letter with this reason.
    Reject(String),
}

/// Decides where a raw update goes (pure).
pub fn route(raw: &[u8], max_bytes: usize) -> Routing {
    if raw.len() > max_bytes {
        return Routing::Reject(format!("oversized update: {} bytes > {max_bytes}", raw.len()));
    }
    let value: serde_json::Value = match serde_json::from_slice(raw) {
        Ok(v) => v,
        Err(e) => return Routing::Reject(format!("malformed update: {e}")),
    };
    match herald_schemas::telegram::update_kind(&value) {
        Ok(kind) => Routing::Publish {
            subject: subjects::update(kind, herald_schemas::telegram::update_sender(&value)),
            update_id: value["update_id"].as_i64().unwrap_or_default(),
            callback_query_id: value.pointer("/callback_query/id").and_then(|v| v.as_str()).map(str::to_string),
        },
        Err(e) => Routing::Reject(e),
    }
}

/// An update handed to NATS: its ack still to come, or dead-lettered already.
enum Sent {
    Pending(async_nats::jetstream::context::PublishAckFuture, Option<String>),
    DeadLettered,
}

/// Hands one raw update to NATS (or dead-letters it, waiting for that), without waiting
/// for the stream's ack.
async fn send(js: &herald_runtime::Js, raw: &[u8], max_bytes: usize) -> anyhow::Result<Sent> {
    metrics::counter!(crate::metrics::UPDATES.name).increment(1);
    match route(raw, max_bytes) {
        Routing::Publish {
            subject,
            update_id,
            callback_query_id,
        } => {
            let ack = js
                .publish_with_id(subject, &update_id.to_string(), bytes::Bytes::copy_from_slice(raw))
                .await?;
            Ok(Sent::Pending(ack, callback_query_id))
        }
        Routing::Reject(reason) => {
            let letter = DeadLetter {
                stage: "bot_inbound",
                error: &reason,
                original_subject: "telegram",
                original_sequence: None,
                payload: raw,
            };
            dead_letter(js, letter).await?;
            Ok(Sent::DeadLettered)
        }
    }
}

/// Publishes one raw update (or dead-letters it) and waits for the stream's ack.
/// Returns the callback query id to answer, if any.
///
/// Errors: NATS refused or timed out (nothing is lost: the caller retries).
pub async fn ingest(js: &herald_runtime::Js, raw: &[u8], max_bytes: usize) -> anyhow::Result<Option<String>> {
    ingest_all(js, &[raw], max_bytes).await.map(|mut ids| ids.pop().flatten())
}

/// Publishes a batch of raw updates in order, then waits for every ack: one round trip
/// per batch instead of one per update (waiting for each ack in turn held long polling
/// to about 800 updates/s). One connection keeps the batch's order in the stream.
/// Returns each update's callback query id to answer.
///
/// Errors: any publish or ack failed; the caller publishes the batch again, and the
/// stream's duplicate window drops what was stored.
pub async fn ingest_all(js: &herald_runtime::Js, raws: &[&[u8]], max_bytes: usize) -> anyhow::Result<Vec<Option<String>>> {
    let mut sent = Vec::with_capacity(raws.len());
    for raw in raws {
        sent.push(send(js, raw, max_bytes).await?);
    }
    let mut callbacks = Vec::with_capacity(sent.len());
    for s in sent {
        callbacks.push(match s {
            Sent::Pending(ack, callback) => {
                ack.await?;
                callback
            }
            Sent::DeadLettered => None,
        });
    }
    Ok(callbacks)
}

/// Stops the "loading" spinner on a pressed inline button.
async fn answer_callback(bot: &Bot, id: String) {
    if let Err(e) = bot.answer_callback_query(teloxide::types::CallbackQueryId(id)).await {
        tracing::debug!(error = %e, "answerCallbackQuery failed");
    }
}

#[derive(serde::Deserialize)]
struct GetUpdates<'a> {
    ok: bool,
    #[serde(borrow, default)]
    result: Vec<&'a RawValue>,
    #[serde(default)]
    description: Option<String>,
}

/// Long polling with getUpdates until `shutdown`.
pub async fn poll(
    bot: Bot,
    tg: TelegramArgs,
    args: InboundArgs,
    js: herald_runtime::Js,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    if let Err(e) = bot.delete_webhook().await {
        tracing::warn!(error = %e, "deleteWebhook failed");
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(args.poll_timeout_secs as u64 + 15))
        .build()?;
    let url = format!("{}/bot{}/getUpdates", tg.api_url.trim_end_matches('/'), tg.token);
    let mut offset: i64 = 0;
    let mut failures = 0u32;
    tracing::info!("long polling for updates");
    while !shutdown.is_cancelled() {
        let body = serde_json::json!({"offset": offset, "timeout": args.poll_timeout_secs, "limit": 100});
        let response = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = http.post(&url).json(&body).send() => r,
        };
        let bytes = match response {
            Ok(r) => r.bytes().await,
            Err(e) => Err(e),
        };
        let bytes = match bytes {
            Ok(b) => b,
            Err(e) => {
                failures += 1;
                // reqwest errors can print the URL, which holds the token: log the kind only
                tracing::warn!(timeout = e.is_timeout(), connect = e.is_connect(), failures, "getUpdates failed");
                tokio::time::sleep(Duration::from_millis(250 * 2u64.pow(failures.min(7)))).await;
                continue;
            }
        };
        let parsed = match serde_json::from_slice::<GetUpdates>(&bytes) {
            Ok(p) if p.ok => p,
            Ok(p) => {
                failures += 1;
                tracing::warn!(description = p.description.as_deref().unwrap_or(""), "getUpdates refused");
                tokio::time::sleep(Duration::from_millis(250 * 2u64.pow(failures.min(7)))).await;
                continue;
            }
            Err(e) => {
                failures += 1;
                tracing::warn!(error = %e, "getUpdates answer is not JSON");
                tokio::time::sleep(Duration::from_millis(250 * 2u64.pow(failures.min(7)))).await;
                continue;
            }
        };
        failures = 0;
        let raws: Vec<&[u8]> = parsed.result.iter().map(|r| r.get().as_bytes()).collect();
        // Retry until stored: confirming the offset past an unstored update would lose it.
        let callbacks = loop {
            match ingest_all(&js, &raws, args.max_update_bytes).await {
                Ok(callbacks) => break callbacks,
                Err(e) => {
                    tracing::warn!(error = %e, "publishing updates failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        };
        for cb in callbacks.into_iter().flatten() {
            answer_callback(&bot, cb).await;
        }
        #[derive(serde::Deserialize)]
        struct Id {
            update_id: i64,
        }
        for raw in &raws {
            if let Ok(id) = serde_json::from_slice::<Id>(raw) {
                offset = offset.max(id.update_id + 1);
            }
        }
    }
    Ok(())
}

#[derive(Clone)]
struct WebhookCtx {
    js: herald_runtime::Js,
    bot: Bot,
    secret: String,
    max_bytes: usize,
}

/// Router for `POST /telegram/webhook`: checks the secret-token header (401 when it is
/// wrong), answers 200 only after the update is stored (500 otherwise, so Telegram retries).
pub fn webhook_router(js: herald_runtime::Js, bot: Bot, secret: String, max_bytes: usize) -> Router {
    Router::new().route("/telegram/webhook", post(webhook)).with_state(WebhookCtx {
        js,
        bot,
        secret,
        max_bytes,
    })
}

async fn webhook(State(ctx): State<WebhookCtx>, headers: HttpHeaders, body: Bytes) -> StatusCode {
    let given = headers.get(SECRET_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
    if !constant_time_eq(given, ctx.secret.as_bytes()) {
        metrics::counter!(crate::metrics::WEBHOOK_REJECTED.name).increment(1);
        return StatusCode::UNAUTHORIZED;
    }
    match ingest(&ctx.js, &body, ctx.max_bytes).await {
        Ok(cb) => {
            if let Some(cb) = cb {
                answer_callback(&ctx.bot, cb).await;
            }
            StatusCode::OK
        }
        Err(e) => {
            tracing::warn!(error = %e, "storing a webhook update failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Registers the webhook with Telegram and serves it until `shutdown`.
pub async fn serve_webhook(bot: Bot, args: InboundArgs, js: herald_runtime::Js, shutdown: CancellationToken) -> anyhow::Result<()> {
    let url = args.webhook_url.clone().expect("webhook mode");
    let secret = args
        .webhook_secret
        .clone()
        .ok_or_else(|| anyhow::anyhow!("webhook mode needs HERALD_WEBHOOK_SECRET"))?;
    bot.set_webhook(reqwest::Url::parse(&url)?).secret_token(secret.clone()).await?;
    let listener = tokio::net::TcpListener::bind(args.webhook_listen).await?;
    tracing::info!(listen = %args.webhook_listen, "webhook server listening");
    axum::serve(listener, webhook_router(js, bot, secret, args.max_update_bytes))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_of_raw_updates() {
        assert_eq!(
            route(
                br#"{"update_id":5,"callback_query":{"id":"77","from":{"id":42},"data":"f:reset"}}"#,
                1000
            ),
            Routing::Publish {
                subject: "herald.updates.callback_query.42".into(),
                update_id: 5,
                callback_query_id: Some("77".into())
            }
        );
        // unknown kinds are stored; the router dead-letters them with the reason
        assert!(matches!(
            route(br#"{"update_id":6,"new_update_kind":{}}"#, 1000),
            Routing::Publish { .. }
        ));
        assert!(matches!(route(b"{oops", 1000), Routing::Reject(r) if r.starts_with("malformed")));
        assert!(matches!(route(&[b' '; 2000], 1000), Routing::Reject(r) if r.starts_with("oversized")));
        assert!(constant_time_eq(b"abc", b"abc") && !constant_time_eq(b"abc", b"abd") && !constant_time_eq(b"ab", b"abc"));
    }
}
