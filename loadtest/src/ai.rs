//! An AI endpoint stand-in that speaks the OpenAI chat-completions API as DeepSeek and
//! OpenAI serve it (api-docs.deepseek.com/api/create-chat-completion,
//! platform.openai.com/docs/api-reference/chat):
//!
//! - `POST /chat/completions` with `Authorization: Bearer <key>` and
//!   `{"model", "messages": [{"role", "content"}, ...]}` -> a `chat.completion` object
//!   (`choices[0].message.content`, `finish_reason`, `usage`);
//! - errors in the documented shape `{"error": {"message", "type", "param", "code"}}`:
//!   401 for a wrong key, 400 for a malformed request, and on demand 429 (with
//!   `Retry-After`) or 500 ([`Mode`]); [`Mode::Slow`] answers late, for timeouts.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// How the stand-in answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A completion: "Because <the correct answer from the prompt> is right."
    Ok,
    /// A completion after this long.
    Slow(Duration),
    /// 500 `server_error`.
    Error,
    /// 429 `rate_limit_exceeded`, `Retry-After: 1`.
    RateLimited,
}

struct Inner {
    key: String,
    mode: Mutex<Mode>,
    requests: AtomicU64,
    in_flight: AtomicU64,
}

/// A running stand-in.
#[derive(Clone)]
pub struct AiStandIn {
    inner: Arc<Inner>,
    pub addr: SocketAddr,
}

fn error(status: StatusCode, message: &str, kind: &str, code: &str) -> Response {
    (
        status,
        Json(json!({"error": {"message": message, "type": kind, "param": null, "code": code}})),
    )
        .into_response()
}

async fn completions(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    inner.requests.fetch_add(1, Ordering::SeqCst);
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if key != Some(inner.key.as_str()) {
        return error(
            StatusCode::UNAUTHORIZED,
            "Authentication Fails, your api key is invalid",
            "authentication_error",
            "invalid_api_key",
        );
    }
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "Failed to deserialize the JSON body",
            "invalid_request_error",
            "invalid_request_error",
        );
    };
    let messages = req["messages"].as_array().cloned().unwrap_or_default();
    let well_formed = messages.iter().all(|m| m["role"].is_string() && m["content"].is_string());
    if req["model"].as_str().is_none_or(str::is_empty) || messages.is_empty() || !well_formed {
        return error(
            StatusCode::BAD_REQUEST,
            "model and messages are required",
            "invalid_request_error",
            "invalid_request_error",
        );
    }
    let mode = *inner.mode.lock().unwrap();
    match mode {
        Mode::Error => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The server had an error",
                "server_error",
                "server_error",
            )
        }
        Mode::RateLimited => {
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "Rate limit reached",
                "requests",
                "rate_limit_exceeded",
            );
            r.headers_mut().insert(header::RETRY_AFTER, "1".parse().expect("a header"));
            return r;
        }
        Mode::Slow(d) => {
            inner.in_flight.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(d).await;
            inner.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
        Mode::Ok => {}
    }
    let prompt = messages.last().and_then(|m| m["content"].as_str()).unwrap_or_default();
    let answer = prompt
        .lines()
        .find_map(|l| l.strip_prefix("Correct answer: "))
        .unwrap_or("that answer");
    let content = format!("Because {answer} is the right one, as the record shows.");
    Json(json!({
        "id": format!("chatcmpl-{}", inner.requests.load(Ordering::SeqCst)),
        "object": "chat.completion",
        "created": herald_schemas::now_ms() / 1000,
        "model": req["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52},
    }))
    .into_response()
}

impl AiStandIn {
    /// Serves on `addr` (port 0: any) with `key` as the only valid API key.
    ///
    /// Errors: the address cannot be bound.
    pub async fn start(addr: SocketAddr, key: &str) -> anyhow::Result<Self> {
        let inner = Arc::new(Inner {
            key: key.into(),
            mode: Mutex::new(Mode::Ok),
            requests: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
        });
        let app = axum::Router::new()
            .route("/chat/completions", axum::routing::post(completions))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(AiStandIn { inner, addr })
    }

    /// The base URL (`--trivia-ai-url`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.inner.mode.lock().unwrap() = mode;
    }

    /// Requests received so far.
    pub fn requests(&self) -> u64 {
        self.inner.requests.load(Ordering::SeqCst)
    }

    /// Slow requests being answered now.
    pub fn in_flight(&self) -> u64 {
        self.inner.in_flight.load(Ordering::SeqCst)
    }
}
