//! What players see of a game: a function of its state, so the same state always makes
//! the same messages under the same idempotency keys, and announcing a state twice (a
//! restart replays the games) sends nothing twice.
//!
//! Keys: `trivia:<game>:lobby`, `trivia:<game>:q<index>`, `trivia:<game>:end`; events
//! `game:<game>:started`, `game:<game>:ended`.

use herald_runtime::Output;
use herald_schemas::{escape_html, subjects, Button, Content, FinalScore, GameStep, OutboundMessage, TriviaGameEvent};

use super::bank::{Bank, ATTRIBUTION};
use super::game::{Game, Mode, Phase};
use crate::core::reply;

/// Callback data: `tv:j:<game>` join, `tv:s:<game>` start, `tv:a:<game>:<q>:<option>`
/// answer, `tv:c:<category index>` / `tv:d:<category index>:<difficulty>` the private
/// game's menu.
pub const PREFIX: &str = "tv:";

/// Telegram shows a button's text on one line; long answers are cut.
const BUTTON_TEXT: usize = 60;

fn out(msg: &OutboundMessage) -> Output {
    reply::output(msg)
}

fn letter(i: usize) -> char {
    (b'A' + i as u8) as char
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max - 1).collect();
    t.push('…');
    t
}

/// The messages and events for `game`'s current state.
pub fn announce(game: &Game, bank: &Bank, explanation: impl Fn(&str) -> Option<String>) -> Vec<Output> {
    let mut outputs = Vec::new();
    match &game.phase {
        Phase::Lobby { until_ms } => {
            if game.mode == Mode::Group {
                outputs.push(out(&lobby(game, *until_ms)));
            }
        }
        Phase::Asking { index, .. } => {
            if *index == 0 {
                outputs.push(event(game, GameStep::Started {
                    players: game.players.keys().copied().collect(),
                    questions: game.questions.len() as u32,
                }));
            }
            if let Some(msg) = question(game, bank, *index, &explanation) {
                outputs.push(out(&msg));
            }
        }
        Phase::Finished { at_ms, cancelled } => {
            let step = if *cancelled {
                GameStep::Cancelled {
                    reason: if game.players.len() < game.min_players as usize { "not enough players" } else { "stopped" }.into(),
                }
            } else {
                GameStep::Ended {
                    scores: final_scores(game),
                    duration_ms: at_ms.saturating_sub(game.created_ms),
                }
            };
            outputs.push(event(game, step));
            if game.mode != Mode::App {
                outputs.push(out(&finished(game, bank, *at_ms, *cancelled, &explanation)));
            }
        }
    }
    outputs
}

/// Asks the explainer for question `id`'s explanation (once per hour at most: the
/// stream's duplicate window drops repeats of `explain:<id>`).
pub fn explain_request(id: &str) -> Output {
    Output {
        subject: subjects::trivia("explain", id),
        msg_id: format!("explain:{id}"),
        payload: herald_schemas::encode(&herald_schemas::ExplainRequest {
            v: 1,
            question_id: id.to_string(),
        }),
    }
}

fn event(game: &Game, step: GameStep) -> Output {
    let name = match step {
        GameStep::Started { .. } => "started",
        GameStep::Ended { .. } | GameStep::Cancelled { .. } => "ended",
    };
    let e = TriviaGameEvent {
        v: 1,
        game: game.id.clone(),
        kind: game.mode.as_str().into(),
        group: (game.mode == Mode::Group).then_some(game.chat_id),
        at_ms: match game.phase {
            Phase::Asking { asked_ms, .. } => asked_ms,
            Phase::Finished { at_ms, .. } => at_ms,
            Phase::Lobby { .. } => game.created_ms,
        },
        step,
    };
    Output {
        subject: subjects::trivia("game", &game.id),
        msg_id: format!("game:{}:{name}", game.id),
        payload: herald_schemas::encode(&e),
    }
}

/// Every player's line, best first.
pub fn final_scores(game: &Game) -> Vec<FinalScore> {
    game.standings()
        .into_iter()
        .map(|(id, p)| FinalScore {
            player: id,
            name: p.name.clone(),
            score: p.score,
            correct: p.correct,
            best_streak: p.best_streak,
            dropped: p.dropped,
        })
        .collect()
}

fn lobby(game: &Game, until_ms: u64) -> OutboundMessage {
    let owner = game.players.get(&game.owner).map(|p| p.name.as_str()).unwrap_or("someone");
    let secs = until_ms.saturating_sub(game.created_ms) / 1000;
    let text = format!(
        "🎲 <b>Trivia</b> — {} questions, {}\n{} opened a game. Press <b>Join</b> to play; it starts when {} presses <b>Start</b>, or in {secs} s with at least {} players.",
        game_length(game),
        escape_html(&game.pool.describe()),
        escape_html(owner),
        escape_html(owner),
        game.min_players
    );
    let buttons = vec![vec![
        Button {
            text: "Join".into(),
            callback_data: format!("{PREFIX}j:{}", game.id),
            url: None,
        },
        Button {
            text: "Start".into(),
            callback_data: format!("{PREFIX}s:{}", game.id),
            url: None,
        },
    ]];
    reply::notice(format!("trivia:{}:lobby", game.id), game.chat_id, Content::SendMessage { text, buttons, reply_to: None })
}

fn game_length(game: &Game) -> usize {
    if game.questions.is_empty() {
        10
    } else {
        game.questions.len()
    }
}

/// The reveal of question `index` in a group: the answer and who scored what.
fn reveal(game: &Game, bank: &Bank, index: u32, explanation: &dyn Fn(&str) -> Option<String>) -> String {
    let Some(q) = game.questions.get(index as usize).and_then(|id| bank.get(id)) else {
        return String::new();
    };
    let right = &q.options[q.correct as usize];
    let mut text = format!("✅ {}. {}\n", letter(q.correct as usize), escape_html(right));
    let mut lines: Vec<String> = game
        .answers_to(index)
        .map(|s| {
            let name = game.players.get(&s.player).map(|p| p.name.as_str()).unwrap_or_default();
            match (s.correct, s.bonus) {
                (true, 0) => format!("{} +{}", escape_html(name), s.points),
                (true, b) => format!("{} +{} (streak +{b})", escape_html(name), s.points),
                (false, _) => format!("{} ✗", escape_html(name)),
            }
        })
        .collect();
    for (id, p) in &game.players {
        if p.dropped_at == Some(index) {
            lines.push(format!("{} dropped out (missed 3 in a row)", escape_html(&p.name)));
        } else if !p.dropped && !game.answers_to(index).any(|s| s.player == *id) {
            lines.push(format!("{} — no answer", escape_html(&p.name)));
        }
    }
    text.push_str(&lines.join(" · "));
    if let Some(e) = explanation(&q.id) {
        text.push_str(&format!("\n💡 {}", escape_html(&e)));
    }
    text
}

/// Question `index`: a quiz poll in a private chat, buttons in a group, nothing for
/// the Mini App (it fetches the question).
fn question(game: &Game, bank: &Bank, index: u32, explanation: &dyn Fn(&str) -> Option<String>) -> Option<OutboundMessage> {
    let q = bank.get(game.questions.get(index as usize)?)?;
    let n = game.questions.len();
    let key = format!("trivia:{}:q{index}", game.id);
    let secs = (game.limit_ms / 1000) as u16;
    match game.mode {
        Mode::App => None,
        Mode::Private | Mode::Daily => {
            // the poll's question is plain text (no parse mode), at most 300 characters
            let text = cut(&format!("{}/{n} · {}", index + 1, q.text), 300);
            // the explanation is HTML (explanation_parse_mode) of at most 200 characters
            let explanation = explanation(&q.id).map(|e| escape_html(&cut(&e, 190)));
            let mut msg = reply::notice(key, game.chat_id, Content::quiz(text, q.options.clone(), q.correct, explanation, Some(secs.clamp(5, 600))));
            msg.report = Some(subjects::trivia("poll", &game.id));
            Some(msg)
        }
        Mode::Group => {
            let mut text = String::new();
            if index > 0 {
                text.push_str(&reveal(game, bank, index - 1, explanation));
                text.push_str("\n\n");
            }
            text.push_str(&format!(
                "<b>Question {}/{n}</b> · {} · {}\n{}\n\n⏱ {secs} s",
                index + 1,
                escape_html(&q.category),
                q.difficulty.as_str(),
                escape_html(&q.text)
            ));
            let buttons = q
                .options
                .iter()
                .enumerate()
                .map(|(i, o)| {
                    vec![Button {
                        text: cut(&format!("{}. {o}", letter(i)), BUTTON_TEXT),
                        callback_data: format!("{PREFIX}a:{}:{index}:{i}", game.id),
                        url: None,
                    }]
                })
                .collect();
            Some(reply::notice(key, game.chat_id, Content::SendMessage { text, buttons, reply_to: None }))
        }
    }
}

fn duration(ms: u64) -> String {
    let s = ms / 1000;
    format!("{}:{:02}", s / 60, s % 60)
}

fn finished(game: &Game, bank: &Bank, at_ms: u64, cancelled: bool, explanation: &dyn Fn(&str) -> Option<String>) -> OutboundMessage {
    let key = format!("trivia:{}:end", game.id);
    let text = match (game.mode, cancelled) {
        (Mode::Group, true) if game.players.len() < game.min_players as usize => {
            format!("Not enough players joined (at least {} are needed). Game cancelled; /trivia opens a new one.", game.min_players)
        }
        (_, true) => "Game stopped. /trivia starts a new one.".to_string(),
        (Mode::Group, false) => {
            let last = game.answers.iter().map(|s| s.question).max().unwrap_or(0).max((game.questions.len() as u32).saturating_sub(1));
            let mut text = reveal(game, bank, last, explanation);
            text.push_str("\n\n🏁 <b>Final scores</b>\n");
            for (i, (_, p)) in game.standings().iter().enumerate() {
                let medal = ["🥇", "🥈", "🥉"].get(i).copied().unwrap_or("  ");
                text.push_str(&format!(
                    "{medal} {} — {} ({} correct, best streak {}){}\n",
                    escape_html(&p.name),
                    p.score,
                    p.correct,
                    p.best_streak,
                    if p.dropped { ", dropped out" } else { "" }
                ));
            }
            text.push_str("\n/top shows this group's leaderboard.");
            text
        }
        (_, false) => {
            let p = game.players.get(&game.owner).cloned().unwrap_or_default();
            let what = if game.mode == Mode::Daily { "Daily challenge done" } else { "Game over" };
            format!(
                "🏁 <b>{what}</b>\nScore: <b>{}</b>\nCorrect: {}/{}\nTime: {}\nBest streak: {}\n\n{}\n<i>{ATTRIBUTION}</i>",
                p.score,
                p.correct,
                game.questions.len(),
                duration(at_ms.saturating_sub(game.created_ms)),
                p.best_streak,
                if game.mode == Mode::Daily { "Come back tomorrow for a new one. /top daily shows today's board." } else { "/trivia plays again; /daily counts on the leaderboards." }
            )
        }
    };
    reply::notice(key, game.chat_id, Content::text(text))
}
