//! The Mini App's HTTP API (axum) and its page.
//!
//! - `GET /trivia/app`: the page (plain HTML and script, no build step). Telegram
//!   opens it from a `web_app` button with the user's `initData` in the URL fragment.
//! - `POST /trivia/api/session` `{"init_data": "<raw initData>"}` -> `{"token", "expires_in",
//!   "user"}`: a JWT for a valid, fresh `initData` (401 otherwise).
//!
//! With `Authorization: Bearer <token>` (401 when missing, forged or expired):
//! - `POST /trivia/api/games` `{"category"?, "difficulty"?}` -> 201, the new game;
//! - `GET /trivia/api/games/<id>` -> the game as its player sees it (403 for another
//!   user's game, 404 for none);
//! - `POST /trivia/api/games/<id>/answers` `{"question", "option"}` -> 202: published on
//!   `herald.trivia.answer.<id>`, scored by the same worker as every answer (403 for
//!   another user's game);
//! - `GET /trivia/api/leaderboard?period=today|week|all` -> the global board and the
//!   caller's line;
//! - `GET /trivia/api/me` -> the caller's stats.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use herald_schemas::{subjects, AnswerVia, TriviaAnswer};
use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::auth::{validate_init_data, Claims, Tokens};
use super::super::bank::{Difficulty, Pool};
use super::super::game::{Game, Mode, Phase, Setup};
use super::super::scoring::{board, Period};
use super::super::service::Trivia;

/// The page: `page.html`, served as is.
pub const PAGE: &str = include_str!("page.html");

/// What the handlers share.
#[derive(Clone)]
pub struct App {
    pub trivia: Arc<Trivia>,
    pub tokens: Tokens,
    /// The bot's token, the key `initData` is checked with.
    pub bot_token: String,
    /// Oldest `initData` accepted, s.
    pub init_data_max_age_s: u64,
}

/// An API error: its status and a message, answered as `{"error": message}`.
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.0, Json(json!({"error": self.1}))).into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            // RFC 6750 §3
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, "Bearer realm=\"herald-trivia\", error=\"invalid_token\"".parse().expect("a valid header"));
        }
        r
    }
}

fn api_error(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError(status, message.into())
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    api_error(status, message).into_response()
}

fn unavailable_error(e: impl std::fmt::Display) -> ApiError {
    tracing::warn!(error = %e, "trivia API: a store failed");
    api_error(StatusCode::SERVICE_UNAVAILABLE, "try again in a moment")
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    unavailable_error(e).into_response()
}

/// The caller's claims from `Authorization: Bearer`, or the 401 to answer.
fn caller(app: &App, headers: &HeaderMap) -> Result<(i64, Claims), ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| api_error(StatusCode::UNAUTHORIZED, "an Authorization: Bearer token is required"))?;
    let claims = app
        .tokens
        .check(token.trim())
        .map_err(|e| api_error(StatusCode::UNAUTHORIZED, format!("invalid token: {e}")))?;
    let user = claims.user().ok_or_else(|| api_error(StatusCode::UNAUTHORIZED, "invalid token: bad subject"))?;
    Ok((user, claims))
}

#[derive(Deserialize)]
struct SessionRequest {
    init_data: String,
}

async fn session(State(app): State<App>, Json(req): Json<SessionRequest>) -> Response {
    let now_s = herald_schemas::now_ms() / 1000;
    match validate_init_data(&req.init_data, &app.bot_token, now_s, app.init_data_max_age_s) {
        Ok(user) => match app.tokens.issue(&user, now_s) {
            Ok(token) => Json(json!({"token": token, "expires_in": app.tokens.ttl_s, "user": user})).into_response(),
            Err(e) => unavailable(e),
        },
        Err(e) => error(StatusCode::UNAUTHORIZED, e.to_string()),
    }
}

#[derive(Deserialize, Default)]
struct NewGame {
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    difficulty: Option<String>,
}

async fn new_game(State(app): State<App>, headers: HeaderMap, body: Option<Json<NewGame>>) -> Response {
    let (user, claims) = match caller(&app, &headers) {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    let req = body.map(|Json(b)| b).unwrap_or_default();
    let t = &app.trivia;
    let category = match req.category.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => match t.bank.category(c) {
            Some(found) => Some(found.to_string()),
            None => return error(StatusCode::BAD_REQUEST, format!("no category matches {c:?}")),
        },
        None => None,
    };
    let difficulty = match req.difficulty.as_deref().filter(|d| !d.is_empty() && *d != "any") {
        Some(d) => match Difficulty::parse(d) {
            Some(d) => Some(d),
            None => return error(StatusCode::BAD_REQUEST, "difficulty is easy, medium or hard"),
        },
        None => None,
    };
    let pool = Pool { category, difficulty };
    match t.current_game(user).await {
        Ok(Some(g)) if g.mode == Mode::App => return (StatusCode::OK, Json(view(t, &g, user))).into_response(),
        Ok(Some(_)) => return error(StatusCode::CONFLICT, "you are in a game in the chat: finish it or send /trivia stop"),
        Ok(None) => {}
        Err(e) => return unavailable(e),
    }
    let now = herald_schemas::now_ms();
    let draw = match t.draw(user, &pool, t.args.trivia_questions as usize, now ^ user as u64).await {
        Ok(d) => d,
        Err(e) => return unavailable(e),
    };
    if draw.picked.ids.is_empty() {
        return error(StatusCode::BAD_REQUEST, "no questions there yet");
    }
    let setup = Setup {
        id: format!("a{now}u{user}"),
        mode: Mode::App,
        chat_id: 0,
        pool,
        questions: draw.picked.ids.clone(),
        limit_ms: t.limit_ms(),
        now_ms: now,
    };
    let game = Game::solo(setup, (user, claims.name));
    match t.start_game(&game, user, Some(&draw)).await {
        Ok(_) => (StatusCode::CREATED, Json(view(t, &game, user))).into_response(),
        Err(e) => unavailable(e),
    }
}

/// A game as its player sees it: the open question without its answer, the result of
/// their last answer, the totals.
pub fn view(t: &Trivia, g: &Game, player: i64) -> serde_json::Value {
    let p = g.players.get(&player).cloned().unwrap_or_default();
    let now = herald_schemas::now_ms();
    let question = match g.phase {
        Phase::Asking { index, until_ms, .. } => g.questions.get(index as usize).and_then(|id| t.bank.get(id)).map(|q| {
            json!({"index": index, "text": q.text, "options": q.options, "category": q.category,
                "difficulty": q.difficulty.as_str(), "closes_in_ms": until_ms.saturating_sub(now),
                "answered": g.answers_to(index).any(|s| s.player == player)})
        }),
        _ => None,
    };
    let last = g.answers.iter().rev().find(|s| s.player == player).map(|s| {
        let right = g.questions.get(s.question as usize).and_then(|id| t.bank.get(id)).map(|q| q.options[q.correct as usize].clone());
        json!({"question": s.question, "correct": s.correct, "points": s.points, "bonus": s.bonus, "right": right})
    });
    json!({
        "id": g.id, "mode": g.mode.as_str(), "total": g.questions.len(), "finished": g.is_finished(),
        "score": p.score, "correct": p.correct, "streak": p.streak, "best_streak": p.best_streak,
        "question": question, "last": last,
    })
}

/// The caller's game, or the 401/403/404 to answer.
async fn own_game(app: &App, headers: &HeaderMap, id: &str) -> Result<(i64, Claims, Game), ApiError> {
    let (user, claims) = caller(app, headers)?;
    let game = match app.trivia.games.load(id).await {
        Ok(Some((g, _))) => g,
        Ok(None) => return Err(api_error(StatusCode::NOT_FOUND, format!("no game {id}"))),
        Err(e) => return Err(unavailable_error(e)),
    };
    if !game.players.contains_key(&user) {
        return Err(api_error(StatusCode::FORBIDDEN, "this is another player's game"));
    }
    Ok((user, claims, game))
}

async fn get_game(State(app): State<App>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    match own_game(&app, &headers, &id).await {
        Ok((user, _, game)) => Json(view(&app.trivia, &game, user)).into_response(),
        Err(r) => r.into_response(),
    }
}

#[derive(Deserialize)]
struct AnswerRequest {
    question: u32,
    option: u8,
}

async fn answer(State(app): State<App>, headers: HeaderMap, Path(id): Path<String>, Json(req): Json<AnswerRequest>) -> Response {
    let (user, claims, game) = match own_game(&app, &headers, &id).await {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    if game.mode != Mode::App {
        return error(StatusCode::FORBIDDEN, "answers to this game come from Telegram");
    }
    let now = herald_schemas::now_ms();
    let a = TriviaAnswer::new(&id, req.question, user, req.option, now, AnswerVia::App, claims.name);
    let msg_id = format!("app:{id}:{}:{user}:{now}", req.question);
    let published = app
        .trivia
        .js
        .publish_with_id(subjects::trivia("answer", &id), &msg_id, herald_schemas::encode(&a).into())
        .await;
    match published {
        Ok(ack) => match ack.await {
            Ok(_) => (StatusCode::ACCEPTED, Json(json!({"accepted": true}))).into_response(),
            Err(e) => unavailable(e),
        },
        Err(e) => unavailable(e),
    }
}

#[derive(Deserialize)]
struct BoardQuery {
    #[serde(default)]
    period: Option<String>,
}

async fn leaderboard(State(app): State<App>, headers: HeaderMap, Query(q): Query<BoardQuery>) -> Response {
    let (user, _) = match caller(&app, &headers) {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    let period = match q.period.as_deref() {
        None | Some("") => Period::Week,
        Some(p) => match Period::parse(p) {
            Some(p) => p,
            None => return error(StatusCode::BAD_REQUEST, "period is today, week or all"),
        },
    };
    let name = board(None, &period.token(herald_schemas::now_ms()));
    match app.trivia.redis.top(&name, 10, Some(user)).await {
        Ok((top, you)) => Json(json!({"board": name, "period": period.label(), "top": top, "you": you})).into_response(),
        Err(e) => unavailable(e),
    }
}

async fn me(State(app): State<App>, headers: HeaderMap) -> Response {
    let (user, claims) = match caller(&app, &headers) {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    match app.trivia.redis.stats(user).await {
        Ok(s) => Json(json!({"id": user, "name": claims.name, "games": s.games, "answered": s.answered,
            "correct": s.correct, "points": s.points, "best_streak": s.best_streak}))
        .into_response(),
        Err(e) => unavailable(e),
    }
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// The routes, for [`serve`] and tests.
pub fn router(app: App) -> axum::Router {
    axum::Router::new()
        .route("/trivia/app", get(page))
        .route("/trivia/api/session", post(session))
        .route("/trivia/api/games", post(new_game))
        .route("/trivia/api/games/{id}", get(get_game))
        .route("/trivia/api/games/{id}/answers", post(answer))
        .route("/trivia/api/leaderboard", get(leaderboard))
        .route("/trivia/api/me", get(me))
        .with_state(app)
}

/// Serves the Mini App and its API on `addr` until `shutdown`.
///
/// Errors: the address cannot be bound.
pub async fn serve(addr: SocketAddr, app: App, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("--trivia-http {addr}: {e}"))?;
    tracing::info!(%addr, "trivia Mini App and API served");
    axum::serve(listener, router(app)).with_graceful_shutdown(shutdown.cancelled_owned()).await?;
    Ok(())
}
