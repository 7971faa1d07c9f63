//! Trivia's inbox stage: what the router hands to trivia (`herald.cmd.trivia.<user>`):
//! commands (private and group), button presses, and quiz-poll answers.
//!
//! An answer (a poll answer, an answer button) becomes a [`TriviaAnswer`] on
//! `herald.trivia.answer.<game>`, timed by when the server had the update (the UPDATES
//! stream's timestamp, carried in the routed update), for the scorer. A new game, a join, a start are written to the games bucket in
//! `commit`; the clock announces the state they leave (see [`super::clock`]).

use std::sync::Arc;

use herald_runtime::{Decision, MsgMeta, Output, Stage, StageError};
use herald_schemas::{escape_html, subjects, AnswerVia, Button, Content, RoutedUpdate, TriviaAnswer};
use serde_json::Value;

use super::bank::{Difficulty, Pool};
use super::commands::{self as say, TriviaCommand};
use super::game::{Game, Mode, Setup};
use super::present::PREFIX;
use super::scoring::{board, Period};
use super::service::{Draw, Trivia};
use crate::core::reply::{notice, output, Reply};

/// What to change once the outputs are out.
#[derive(Debug, Default)]
pub enum TriviaCommit {
    #[default]
    Nothing,
    /// Store a new game (`who` plays it: the player, or the group), its draw marked seen.
    Open { game: Box<Game>, who: i64, draw: Option<Draw> },
    /// Write a changed game if still at `revision` (a conflict retries the input).
    Update { game: Box<Game>, revision: u64, draw: Option<Draw> },
    /// A `/flag` of question `id` by `player`.
    Flag { id: String, player: i64 },
    /// An admin's review of a quarantined question.
    Review { id: String, keep: bool },
}

/// The stage.
pub struct TriviaInbox {
    pub trivia: Arc<Trivia>,
}

type Answer = Decision<TriviaCommit>;

fn forward(outputs: Vec<Output>, commit: TriviaCommit) -> Answer {
    Decision::Forward { outputs, commit }
}

/// Who pressed or wrote, and where.
struct Ctx<'a> {
    update_id: i64,
    user: i64,
    chat: i64,
    name: String,
    /// When the server had the update (its UPDATES timestamp).
    at_ms: u64,
    routed: &'a RoutedUpdate,
}

impl Ctx<'_> {
    fn reply(&self, text: impl Into<String>) -> Output {
        Reply::plain(text).output(self.update_id, self.chat, None)
    }

    fn private(&self) -> bool {
        self.chat > 0
    }

    /// The toast answering a button press (Telegram shows a spinner until it comes).
    fn toast(&self, text: &str) -> Option<Output> {
        let id = self.routed.update.pointer("/callback_query/id")?.as_str()?;
        Some(output(&notice(
            format!("cb:{}", self.update_id),
            self.chat,
            Content::answer_callback(id, (!text.is_empty()).then(|| text.to_string())),
        )))
    }
}

/// `/trivia`'s arguments: `[category words] [difficulty]`, `stop`.
enum PlayArgs {
    Stop,
    Menu,
    Play(Pool),
    UnknownCategory(String),
}

impl TriviaInbox {
    /// A new game's setup in the chat of `ctx`, started at the update's time.
    fn setup(&self, ctx: &Ctx<'_>, id: String, mode: Mode, pool: Pool, questions: Vec<String>) -> Setup {
        Setup {
            id,
            mode,
            chat_id: ctx.chat,
            pool,
            questions,
            limit_ms: self.trivia.limit_ms(),
            now_ms: ctx.at_ms,
        }
    }

    fn parse_args(&self, args: &str) -> PlayArgs {
        let words: Vec<&str> = args.split_whitespace().collect();
        if words.len() == 1 && words[0].eq_ignore_ascii_case("stop") {
            return PlayArgs::Stop;
        }
        if words.is_empty() {
            return PlayArgs::Menu;
        }
        let mut pool = Pool::default();
        let mut rest = Vec::new();
        for w in words {
            match Difficulty::parse(w) {
                Some(d) => pool.difficulty = Some(d),
                None if w.eq_ignore_ascii_case("any") => {}
                None => rest.push(w),
            }
        }
        if !rest.is_empty() {
            let wanted = rest.join(" ");
            match self.trivia.bank.category(&wanted) {
                Some(c) => pool.category = Some(c.to_string()),
                None => return PlayArgs::UnknownCategory(wanted),
            }
        }
        PlayArgs::Play(pool)
    }

    async fn command(&self, ctx: &Ctx<'_>, text: &str) -> Result<Answer, StageError> {
        if let Some(rest) = text.strip_prefix("/admin") {
            return self.admin(ctx, rest.trim()).await;
        }
        let Some(cmd) = TriviaCommand::from_text(text) else {
            return Ok(forward(vec![ctx.reply("Unknown trivia command. /help lists them.")], TriviaCommit::Nothing));
        };
        match cmd {
            TriviaCommand::Trivia(args) => match (self.parse_args(&args), ctx.private()) {
                (PlayArgs::Stop, _) => self.stop(ctx).await,
                (PlayArgs::UnknownCategory(w), _) => {
                    let list = self.trivia.bank.categories.iter().map(|c| escape_html(c)).collect::<Vec<_>>().join(", ");
                    Ok(forward(vec![ctx.reply(format!("No category matches “{}”. Categories: {list}.", escape_html(&w)))], TriviaCommit::Nothing))
                }
                (PlayArgs::Menu, true) => {
                    let mut outputs = vec![self.category_menu(ctx, None)];
                    if let Some(url) = &self.trivia.args.trivia_app_url {
                        let content = Content::SendWebApp {
                            text: "…or play in the app, with your leaderboard at hand:".into(),
                            button: "🎲 Open Trivia".into(),
                            url: url.clone(),
                        };
                        outputs.push(output(&notice(format!("trivia:app:{}", ctx.update_id), ctx.chat, content)));
                    }
                    Ok(forward(outputs, TriviaCommit::Nothing))
                }
                (PlayArgs::Play(pool), true) => self.play(ctx, pool).await,
                (PlayArgs::Menu, false) => self.lobby(ctx, Pool::default()).await,
                (PlayArgs::Play(pool), false) => self.lobby(ctx, pool).await,
            },
            TriviaCommand::Daily if !ctx.private() => Ok(forward(vec![ctx.reply("The daily challenge is played in a private chat with me.")], TriviaCommit::Nothing)),
            TriviaCommand::Daily => self.daily(ctx).await,
            TriviaCommand::Top(args) => self.top(ctx, &args).await,
            TriviaCommand::Stats => {
                let s = self.trivia.redis.stats(ctx.user).await?;
                let rate = (s.correct * 100).checked_div(s.answered).unwrap_or(0);
                let text = format!(
                    "📊 <b>Your trivia</b>\nGames: {}\nAnswers: {} ({}% correct)\nPoints: {}\nBest streak: {}",
                    s.games, s.answered, rate, s.points, s.best_streak
                );
                Ok(forward(vec![ctx.reply(text)], TriviaCommit::Nothing))
            }
            TriviaCommand::Flag => self.flag(ctx).await,
        }
    }

    /// A private game: refused while one is on, else drawn and opened.
    async fn play(&self, ctx: &Ctx<'_>, pool: Pool) -> Result<Answer, StageError> {
        if let Some(g) = self.trivia.current_game(ctx.user).await? {
            let at = g.asking().map(|i| format!(" (question {}/{})", i + 1, g.questions.len())).unwrap_or_default();
            return Ok(forward(vec![ctx.reply(format!("You are in a game{at}. /trivia stop ends it."))], TriviaCommit::Nothing));
        }
        let n = self.trivia.args.trivia_questions as usize;
        let draw = self.trivia.draw(ctx.user, &pool, n, ctx.update_id as u64).await?;
        if draw.picked.ids.is_empty() {
            return Ok(forward(vec![ctx.reply("No questions there yet. Try another category.")], TriviaCommit::Nothing));
        }
        let game = Game::solo(self.setup(ctx, format!("p{}", ctx.update_id), Mode::Private, pool.clone(), draw.picked.ids.clone()), (ctx.user, ctx.name.clone()));
        let text = format!(
            "🎲 <b>Trivia</b>: {} questions · {} · {} s each. Here comes the first!",
            game.questions.len(),
            escape_html(&pool.describe()),
            self.trivia.limit_ms() / 1000
        );
        Ok(forward(vec![ctx.reply(text)], TriviaCommit::Open {
            game: Box::new(game),
            who: ctx.user,
            draw: Some(draw),
        }))
    }

    /// A group's lobby.
    async fn lobby(&self, ctx: &Ctx<'_>, pool: Pool) -> Result<Answer, StageError> {
        if self.trivia.current_game(ctx.chat).await?.is_some() {
            return Ok(forward(vec![ctx.reply("A game is on in this group already.")], TriviaCommit::Nothing));
        }
        let lobby_ms = self.trivia.args.trivia_lobby_time.as_millis() as u64;
        let game = Game::lobby(self.setup(ctx, format!("g{}", ctx.update_id), Mode::Group, pool, Vec::new()), (ctx.user, ctx.name.clone()), lobby_ms);
        Ok(forward(Vec::new(), TriviaCommit::Open {
            game: Box::new(game),
            who: ctx.chat,
            draw: None,
        }))
    }

    async fn daily(&self, ctx: &Ctx<'_>) -> Result<Answer, StageError> {
        let day = Trivia::day(ctx.at_ms);
        let id = format!("d{day}u{}", ctx.user);
        if let Some((g, _)) = self.trivia.games.load(&id).await? {
            let score = g.players.get(&ctx.user).map(|p| p.score).unwrap_or(0);
            let text = match g.is_finished() {
                true => format!("You played today's challenge: {score} points. A new one comes at 00:00 UTC. /top today shows the board."),
                false => "Your daily challenge is on: answer the poll above.".to_string(),
            };
            return Ok(forward(vec![ctx.reply(text)], TriviaCommit::Nothing));
        }
        if self.trivia.current_game(ctx.user).await?.is_some() {
            return Ok(forward(vec![ctx.reply("Finish your game first, or /trivia stop.")], TriviaCommit::Nothing));
        }
        let questions = self.trivia.daily_questions(day).await?;
        let game = Game::solo(self.setup(ctx, id, Mode::Daily, Pool::default(), questions), (ctx.user, ctx.name.clone()));
        let text = format!(
            "📅 <b>Daily challenge</b>: {} questions, the same for everyone today, one attempt. It counts on the leaderboards. Go!",
            game.questions.len()
        );
        Ok(forward(vec![ctx.reply(text)], TriviaCommit::Open {
            game: Box::new(game),
            who: ctx.user,
            draw: None,
        }))
    }

    async fn stop(&self, ctx: &Ctx<'_>) -> Result<Answer, StageError> {
        let who = if ctx.private() { ctx.user } else { ctx.chat };
        let Some(game) = self.trivia.current_game(who).await? else {
            return Ok(forward(vec![ctx.reply("No game is on.")], TriviaCommit::Nothing));
        };
        if game.owner != ctx.user && !ctx.routed.admin {
            return Ok(forward(vec![ctx.reply("Only whoever started the game can stop it.")], TriviaCommit::Nothing));
        }
        let Some((mut game, revision)) = self.trivia.games.load(&game.id).await? else {
            return Ok(forward(vec![ctx.reply("No game is on.")], TriviaCommit::Nothing));
        };
        game.stop(ctx.at_ms);
        Ok(forward(Vec::new(), TriviaCommit::Update {
            game: Box::new(game),
            revision,
            draw: None,
        }))
    }

    async fn top(&self, ctx: &Ctx<'_>, args: &str) -> Result<Answer, StageError> {
        let period = match args.trim() {
            "" => Period::Week,
            a => match Period::parse(a) {
                Some(p) => p,
                None => return Ok(forward(vec![ctx.reply("Use /top today, /top week or /top all.")], TriviaCommit::Nothing)),
            },
        };
        let group = (!ctx.private()).then_some(ctx.chat);
        let name = board(group, &period.token(ctx.at_ms));
        let (lines, own) = self.trivia.redis.top(&name, 10, Some(ctx.user)).await?;
        let title = match group {
            Some(_) => format!("🏆 <b>This group — {}</b>", period.label()),
            None => format!("🏆 <b>Leaderboard — {}</b>", period.label()),
        };
        let mut text = title;
        if lines.is_empty() {
            text.push_str("\nNobody yet. Group games and /daily count here.");
        }
        for l in &lines {
            text.push_str(&format!("\n{}. {} — {}", l.rank, escape_html(&l.name), l.points));
        }
        if let Some(o) = own {
            text.push_str(&format!("\n…\n{}. {} — {} (you)", o.rank, escape_html(&o.name), o.points));
        }
        Ok(forward(vec![ctx.reply(text)], TriviaCommit::Nothing))
    }

    async fn flag(&self, ctx: &Ctx<'_>) -> Result<Answer, StageError> {
        let game = match self.trivia.last_game(ctx.user).await? {
            Some(g) => Some(g),
            None if !ctx.private() => self.trivia.last_game(ctx.chat).await?,
            None => None,
        };
        let last = game.as_ref().and_then(|g| {
            let index = g.asking().unwrap_or(g.answers.iter().map(|s| s.question).max().unwrap_or(0));
            g.questions.get(index as usize).cloned()
        });
        let Some(id) = last else {
            return Ok(forward(vec![ctx.reply("There is no question to flag: play one first.")], TriviaCommit::Nothing));
        };
        let text = self.trivia.bank.get(&id).map(|q| escape_html(&q.text)).unwrap_or_default();
        Ok(forward(
            vec![ctx.reply(format!("🚩 Flagged for review: “{text}”. Thanks — at {} flags it is taken out of play until an admin looks.", self.trivia.args.trivia_flags))],
            TriviaCommit::Flag { id, player: ctx.user },
        ))
    }

    async fn admin(&self, ctx: &Ctx<'_>, args: &str) -> Result<Answer, StageError> {
        let words: Vec<&str> = args.split_whitespace().collect();
        match words.as_slice() {
            ["flags"] => {
                let flagged = self.trivia.redis.flagged().await?;
                let mut text = format!("🚩 <b>Quarantined questions</b>: {}", flagged.len());
                for (id, n) in &flagged {
                    let q = self.trivia.bank.get(id);
                    let (question, answer) = q.map(|q| (q.text.as_str(), q.options[q.correct as usize].as_str())).unwrap_or(("(not in the bank)", ""));
                    text.push_str(&format!("\n<code>{id}</code> ({n} flags) {} — answer: {}", escape_html(question), escape_html(answer)));
                }
                text.push_str(&format!("\n\n{}", say::ADMIN_USAGE));
                Ok(forward(vec![ctx.reply(text)], TriviaCommit::Nothing))
            }
            ["flags", verb @ ("keep" | "drop"), id] => {
                if self.trivia.bank.get(id).is_none() {
                    return Ok(forward(vec![ctx.reply(format!("No question {}.", escape_html(id)))], TriviaCommit::Nothing));
                }
                let keep = *verb == "keep";
                let text = if keep { "Back in play." } else { "Out of play for good." };
                Ok(forward(vec![ctx.reply(text)], TriviaCommit::Review { id: id.to_string(), keep }))
            }
            _ => Ok(forward(vec![ctx.reply(say::ADMIN_USAGE)], TriviaCommit::Nothing)),
        }
    }

    /// The private game's menu: categories, then difficulty (`edit`: the menu message).
    fn category_menu(&self, ctx: &Ctx<'_>, edit: Option<i32>) -> Output {
        let mut rows: Vec<Vec<Button>> = vec![vec![Button {
            text: "🎲 Any category".into(),
            callback_data: format!("{PREFIX}c:any"),
            url: None,
        }]];
        let cats: Vec<Button> = self
            .trivia
            .bank
            .categories
            .iter()
            .enumerate()
            .map(|(i, c)| Button {
                text: c.strip_prefix("Entertainment: ").unwrap_or(c).to_string(),
                callback_data: format!("{PREFIX}c:{i}"),
                url: None,
            })
            .collect();
        rows.extend(cats.chunks(2).map(<[Button]>::to_vec));
        Reply::with_buttons("🎲 <b>Trivia</b> — pick a category:", rows).output(ctx.update_id, ctx.chat, edit)
    }

    async fn callback(&self, ctx: &Ctx<'_>, data: &str) -> Result<Answer, StageError> {
        let parts: Vec<&str> = data.strip_prefix(PREFIX).unwrap_or_default().split(':').collect();
        match parts.as_slice() {
            ["c", cat] => {
                let Some(label) = self.category_label(cat) else {
                    return Ok(self.toast_only(ctx, "That menu is out of date: send /trivia again."));
                };
                let rows = vec![
                    ["easy", "medium", "hard"]
                        .iter()
                        .map(|d| Button {
                            text: d.to_string(),
                            callback_data: format!("{PREFIX}d:{cat}:{d}"),
                            url: None,
                        })
                        .collect(),
                    vec![Button {
                        text: "any difficulty".into(),
                        callback_data: format!("{PREFIX}d:{cat}:any"),
                        url: None,
                    }],
                ];
                let text = format!("🎲 <b>Trivia</b> — {}. Difficulty?", escape_html(&label));
                let mut outputs = vec![Reply::with_buttons(text, rows).output(ctx.update_id, ctx.chat, ctx.routed.message_id)];
                outputs.extend(ctx.toast(""));
                Ok(forward(outputs, TriviaCommit::Nothing))
            }
            ["d", cat, difficulty] => {
                let (Some(_), true) = (self.category_label(cat), *difficulty == "any" || Difficulty::parse(difficulty).is_some()) else {
                    return Ok(self.toast_only(ctx, "That menu is out of date: send /trivia again."));
                };
                let pool = Pool {
                    category: cat.parse::<usize>().ok().and_then(|i| self.trivia.bank.categories.get(i).cloned()),
                    difficulty: Difficulty::parse(difficulty),
                };
                let mut answer = self.play(ctx, pool).await?;
                if let Decision::Forward { outputs, .. } = &mut answer {
                    outputs.extend(ctx.toast(""));
                }
                Ok(answer)
            }
            ["j", game] => self.join(ctx, game).await,
            ["s", game] => self.start(ctx, game).await,
            ["a", game, question, option] => {
                let (Ok(question), Ok(option)) = (question.parse::<u32>(), option.parse::<u8>()) else {
                    return Ok(self.toast_only(ctx, "That button is broken."));
                };
                self.button_answer(ctx, game, question, option).await
            }
            _ => Ok(self.toast_only(ctx, "That button is out of date.")),
        }
    }

    fn category_label(&self, cat: &str) -> Option<String> {
        match cat {
            "any" => Some("any category".into()),
            i => i.parse::<usize>().ok().and_then(|i| self.trivia.bank.categories.get(i).cloned()),
        }
    }

    fn toast_only(&self, ctx: &Ctx<'_>, text: &str) -> Answer {
        forward(ctx.toast(text).into_iter().collect(), TriviaCommit::Nothing)
    }

    /// The game a group button belongs to, checked against the chat it was pressed in
    /// (callback data can be forged).
    async fn group_game(&self, ctx: &Ctx<'_>, id: &str) -> Result<Option<(Game, u64)>, StageError> {
        Ok(self.trivia.games.load(id).await?.filter(|(g, _)| g.chat_id == ctx.chat && g.mode == Mode::Group))
    }

    async fn join(&self, ctx: &Ctx<'_>, id: &str) -> Result<Answer, StageError> {
        let Some((mut game, revision)) = self.group_game(ctx, id).await? else {
            return Ok(self.toast_only(ctx, "This game is over."));
        };
        match game.join(ctx.user, ctx.name.clone()) {
            Ok(true) => {
                let text = format!("You're in! {} players.", game.players.len());
                Ok(forward(ctx.toast(&text).into_iter().collect(), TriviaCommit::Update {
                    game: Box::new(game),
                    revision,
                    draw: None,
                }))
            }
            Ok(false) => Ok(self.toast_only(ctx, &format!("You're in already ({} players).", game.players.len()))),
            Err(why) => Ok(self.toast_only(ctx, why)),
        }
    }

    async fn start(&self, ctx: &Ctx<'_>, id: &str) -> Result<Answer, StageError> {
        let Some((mut game, revision)) = self.group_game(ctx, id).await? else {
            return Ok(self.toast_only(ctx, "This game is over."));
        };
        if game.owner != ctx.user {
            return Ok(self.toast_only(ctx, "Only whoever opened the game can start it."));
        }
        if (game.players.len() as u32) < game.min_players {
            return Ok(self.toast_only(ctx, &format!("Waiting for players: at least {} are needed.", game.min_players)));
        }
        let n = self.trivia.args.trivia_questions as usize;
        let draw = self.trivia.draw(game.chat_id, &game.pool.clone(), n, ctx.update_id as u64).await?;
        if !game.start(draw.picked.ids.clone(), ctx.at_ms) {
            return Ok(self.toast_only(ctx, "This game has started already."));
        }
        Ok(forward(ctx.toast("Starting!").into_iter().collect(), TriviaCommit::Update {
            game: Box::new(game),
            revision,
            draw: Some(draw),
        }))
    }

    async fn button_answer(&self, ctx: &Ctx<'_>, id: &str, question: u32, option: u8) -> Result<Answer, StageError> {
        let Some((game, _)) = self.group_game(ctx, id).await? else {
            return Ok(self.toast_only(ctx, "This game is over."));
        };
        let toast = match game.players.get(&ctx.user) {
            None => "You're not in this game: join the next one.".to_string(),
            Some(p) if p.dropped => "You dropped out of this game.".to_string(),
            Some(_) if game.answers_to(question).any(|s| s.player == ctx.user) => "You answered that one already.".to_string(),
            Some(_) if game.asking() != Some(question) => "That question is closed.".to_string(),
            Some(_) => format!("Locked in: {}", (b'A' + option) as char),
        };
        let mut outputs: Vec<Output> = ctx.toast(&toast).into_iter().collect();
        // the scorer decides; the toast only says what is known now
        if game.players.contains_key(&ctx.user) {
            outputs.push(answer_output(TriviaAnswer::new(id, question, ctx.user, option, ctx.at_ms, AnswerVia::Button, &ctx.name), ctx.update_id));
        }
        Ok(forward(outputs, TriviaCommit::Nothing))
    }

    /// Deliveries of a vote on a poll nobody reported before it is dropped (counted as
    /// `herald_stage_dropped_total{stage="trivia_inbox",reason="unknown_poll"}`) rather
    /// than dead-lettered: 0.7 s of the stage's backoff (100, 200, 400 ms), far more than
    /// the moment a report can lag behind its first vote; a stray vote (a poll of another
    /// bot's era, a forged update) is nothing for an operator to read.
    const UNKNOWN_POLL_DELIVERIES: i64 = 4;

    async fn poll_answer(&self, routed: &RoutedUpdate, at_ms: u64, delivered: i64) -> Result<Answer, StageError> {
        let body = &routed.update["poll_answer"];
        let (Some(poll), Some(user)) = (body["poll_id"].as_str(), body.pointer("/user/id").and_then(Value::as_i64)) else {
            return Err(StageError::Permanent("poll_answer without poll_id or user".into()));
        };
        let Some(option) = body["option_ids"].as_array().and_then(|o| o.first()).and_then(Value::as_u64) else {
            // a retracted vote (quiz polls cannot be retracted, regular ones can)
            return Ok(Decision::Drop { reason: "vote_retracted" });
        };
        let Some((game, question)) = self.trivia.polls.get(poll).await? else {
            // the bot reports a poll right after Telegram takes it; an answer can
            // overtake the report by a moment, so this is retried before it is dropped
            if delivered >= Self::UNKNOWN_POLL_DELIVERIES {
                return Ok(Decision::Drop { reason: "unknown_poll" });
            }
            return Err(StageError::Transient(anyhow::anyhow!("poll {poll} is not known (yet)")));
        };
        let name = body.pointer("/user/first_name").and_then(Value::as_str).unwrap_or_default();
        let answer = TriviaAnswer::new(game, question, user, option.min(u8::MAX.into()) as u8, at_ms, AnswerVia::Poll, name);
        Ok(forward(vec![answer_output(answer, routed.update_id)], TriviaCommit::Nothing))
    }
}

/// An answer for the scorer, under the id of the update it came from (a second press
/// is a second event: refusing it is the scorer's job, not the stream's).
pub fn answer_output(a: TriviaAnswer, update_id: i64) -> Output {
    Output {
        subject: subjects::trivia("answer", &a.game),
        msg_id: format!("answer:{update_id}"),
        payload: herald_schemas::encode(&a),
    }
}

impl Stage for TriviaInbox {
    const NAME: &'static str = "trivia_inbox";
    type Input = RoutedUpdate;
    type Commit = TriviaCommit;
    type Effect = std::convert::Infallible;

    fn decode(&self, payload: &[u8]) -> Result<RoutedUpdate, String> {
        herald_schemas::decode(payload).map_err(|e| e.to_string())
    }

    async fn decide(&self, routed: RoutedUpdate, meta: &MsgMeta) -> Result<Answer, StageError> {
        // when the server had the update, whenever it is processed (a backlog after a
        // restart is timed as it arrived)
        let at_ms = [routed.received_ms, meta.published_ms].into_iter().find(|t| *t > 0).unwrap_or_else(herald_schemas::now_ms);
        if routed.kind == "poll_answer" {
            return self.poll_answer(&routed, at_ms, meta.delivered).await;
        }
        let (Some(user), Some(chat)) = (routed.user_id, routed.chat_id) else {
            return Ok(Decision::Drop { reason: "no_user_or_chat" });
        };
        let body = &routed.update[routed.kind.as_str()];
        let ctx = Ctx {
            update_id: routed.update_id,
            user,
            chat,
            name: body.pointer("/from/first_name").and_then(Value::as_str).unwrap_or_default().chars().take(64).collect(),
            at_ms,
            routed: &routed,
        };
        match (&routed.command, &routed.callback_data) {
            (Some(text), _) => self.command(&ctx, text).await,
            (None, Some(data)) => self.callback(&ctx, data).await,
            _ => Ok(Decision::Drop { reason: "not_a_trivia_update" }),
        }
    }

    async fn commit(&self, commit: TriviaCommit) -> Result<(), StageError> {
        let t = &self.trivia;
        match commit {
            TriviaCommit::Nothing => {}
            TriviaCommit::Open { game, who, draw } => {
                t.start_game(&game, who, draw.as_ref()).await?;
            }
            TriviaCommit::Update { game, revision, draw } => {
                if let Some(d) = &draw {
                    t.mark_seen(d).await?;
                }
                t.games.update(&game, revision).await?;
            }
            TriviaCommit::Flag { id, player } => {
                let n = t.redis.flag(&id, player, t.args.trivia_flags).await?;
                metrics::counter!(super::metrics::FLAGS.name).increment(1);
                if n == t.args.trivia_flags {
                    tracing::info!(question = %id, "question quarantined by {n} flags");
                }
            }
            TriviaCommit::Review { id, keep } => t.redis.review(&id, keep).await?,
        }
        Ok(())
    }
}
