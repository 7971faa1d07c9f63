//! A game's state and its rules, with no I/O: what an answer scores, when a question
//! ends, who drops out. The state lives in the `herald_trivia_games` bucket (see
//! [`super::store`]); the messages players see are a function of it (see
//! [`super::present`]).

use std::collections::BTreeMap;

use herald_schemas::TriviaAnswer;
use serde::{Deserialize, Serialize};

use super::bank::{Pool, Question};
use super::scoring;

/// How a game is played and where its messages go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// One player, quiz polls in their private chat; counts toward their own stats only.
    Private,
    /// The day's challenge: quiz polls, one attempt; counts on the global boards.
    Daily,
    /// A group's game: buttons in the group, timed by the server; counts on the
    /// global and the group's boards.
    Group,
    /// One player in the Mini App; no Telegram messages; own stats only.
    App,
}

impl Mode {
    /// Whether the game's answers count on leaderboards (group games and the daily
    /// challenge), so solo replays cannot farm them.
    pub fn ranked(self) -> bool {
        matches!(self, Mode::Group | Mode::Daily)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Private => "private",
            Mode::Daily => "daily",
            Mode::Group => "group",
            Mode::App => "app",
        }
    }
}

/// Where a game is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// A group's lobby: players join until `until_ms` or the owner starts it.
    Lobby { until_ms: u64 },
    /// Question `index` is open from `asked_ms` until `until_ms`.
    Asking { index: u32, asked_ms: u64, until_ms: u64 },
    /// Over (`cancelled`: a lobby that never had enough players, or stopped).
    Finished { at_ms: u64, cancelled: bool },
}

/// One player's running totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Player {
    pub name: String,
    pub score: u64,
    pub correct: u32,
    /// Correct answers in a row now.
    pub streak: u32,
    pub best_streak: u32,
    /// Questions missed in a row.
    pub misses: u32,
    pub dropped: bool,
    /// The question at whose end they dropped out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped_at: Option<u32>,
}

/// One scored answer: exactly one per (question, player).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    pub question: u32,
    pub player: i64,
    pub option: u8,
    pub correct: bool,
    pub points: u32,
    pub bonus: u32,
    /// The streak after this answer.
    pub streak: u32,
    pub elapsed_ms: u64,
    pub at_ms: u64,
}

impl Scored {
    pub fn total(&self) -> u64 {
        u64::from(self.points + self.bonus)
    }
}

/// A game.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Game {
    pub v: u32,
    pub id: String,
    pub mode: Mode,
    /// Where its messages go: the player's chat or the group (0 for the Mini App).
    pub chat_id: i64,
    /// Who started it.
    pub owner: i64,
    pub pool: Pool,
    /// Question ids, drawn when the game starts.
    pub questions: Vec<String>,
    /// How long each question is open, ms (`T` of the points formula).
    pub limit_ms: u64,
    pub created_ms: u64,
    /// Players needed to start (2 for a group).
    pub min_players: u32,
    pub phase: Phase,
    /// By Telegram user id.
    pub players: BTreeMap<i64, Player>,
    /// Every scored answer, in the order scored.
    pub answers: Vec<Scored>,
    /// When each question was asked (ms), by index: an answer received within its
    /// question's time counts even when it is processed after the question ended (a
    /// backlog after a restart).
    #[serde(default)]
    pub asked: Vec<u64>,
}

/// What a new game is made of.
#[derive(Debug, Clone)]
pub struct Setup {
    pub id: String,
    pub mode: Mode,
    /// Where its messages go (see [`Game::chat_id`]).
    pub chat_id: i64,
    pub pool: Pool,
    pub questions: Vec<String>,
    /// How long each question is open, ms.
    pub limit_ms: u64,
    pub now_ms: u64,
}

/// Questions missed in a row after which a group player drops out (a private game
/// ends).
pub const MAX_MISSES: u32 = 3;

/// Most players in one group game.
pub const MAX_PLAYERS: usize = 100;

/// Why an answer was not scored.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// Scored before (a redelivery, or a second press): the first one stands.
    AlreadyScored(Scored),
    NotAPlayer,
    Dropped,
    /// The game is not at that question (over, or moved on).
    NotOpen,
    /// After the question's deadline.
    Late,
    NoSuchOption,
}

impl Refusal {
    /// A metrics label.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::AlreadyScored(_) => "already_scored",
            Refusal::NotAPlayer => "not_a_player",
            Refusal::Dropped => "dropped_out",
            Refusal::NotOpen => "question_not_open",
            Refusal::Late => "late",
            Refusal::NoSuchOption => "no_such_option",
        }
    }
}

/// What a question's end did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ended {
    /// Players who dropped out at this question.
    pub dropped: Vec<i64>,
}

impl Game {
    /// A game with one player, asking its first question at `s.now_ms`.
    pub fn solo(s: Setup, player: (i64, String)) -> Self {
        let Setup {
            id,
            mode,
            chat_id,
            pool,
            questions,
            limit_ms,
            now_ms,
        } = s;
        let mut players = BTreeMap::new();
        players.insert(
            player.0,
            Player {
                name: player.1,
                ..Default::default()
            },
        );
        Game {
            v: 1,
            id,
            mode,
            chat_id,
            owner: player.0,
            pool,
            questions,
            limit_ms,
            created_ms: now_ms,
            min_players: 1,
            phase: Phase::Asking {
                index: 0,
                asked_ms: now_ms,
                until_ms: now_ms + limit_ms,
            },
            players,
            answers: Vec::new(),
            asked: vec![now_ms],
        }
    }

    /// A group's lobby (`s.chat_id` the group), open for `lobby_ms`, with its owner in
    /// it; the questions are drawn when it starts.
    pub fn lobby(s: Setup, owner: (i64, String), lobby_ms: u64) -> Self {
        let now_ms = s.now_ms;
        let mut game = Game::solo(
            Setup {
                mode: Mode::Group,
                questions: Vec::new(),
                ..s
            },
            owner,
        );
        game.min_players = 2;
        game.phase = Phase::Lobby { until_ms: now_ms + lobby_ms };
        game.asked.clear();
        game
    }

    /// When the game next needs the clock: the lobby's or the question's deadline.
    pub fn deadline(&self) -> Option<u64> {
        match self.phase {
            Phase::Lobby { until_ms } | Phase::Asking { until_ms, .. } => Some(until_ms),
            Phase::Finished { .. } => None,
        }
    }

    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Finished { .. })
    }

    /// The open question's index.
    pub fn asking(&self) -> Option<u32> {
        match self.phase {
            Phase::Asking { index, .. } => Some(index),
            _ => None,
        }
    }

    /// Players still in.
    pub fn active(&self) -> impl Iterator<Item = (&i64, &Player)> {
        self.players.iter().filter(|(_, p)| !p.dropped)
    }

    /// Adds a player to the lobby (a second join changes nothing). Returns whether
    /// they were new.
    ///
    /// Errors: not a lobby any more, or full.
    pub fn join(&mut self, player: i64, name: String) -> Result<bool, &'static str> {
        if !matches!(self.phase, Phase::Lobby { .. }) {
            return Err("This game has already started.");
        }
        if self.players.contains_key(&player) {
            return Ok(false);
        }
        if self.players.len() >= MAX_PLAYERS {
            return Err("This game is full.");
        }
        self.players.insert(player, Player { name, ..Default::default() });
        Ok(true)
    }

    /// Starts a lobby with `questions` at `now_ms`, or cancels it when fewer than
    /// `min_players` joined. Returns whether it started.
    pub fn start(&mut self, questions: Vec<String>, now_ms: u64) -> bool {
        if !matches!(self.phase, Phase::Lobby { .. }) {
            return false;
        }
        if (self.players.len() as u32) < self.min_players || questions.is_empty() {
            self.phase = Phase::Finished {
                at_ms: now_ms,
                cancelled: true,
            };
            return false;
        }
        self.questions = questions;
        self.phase = Phase::Asking {
            index: 0,
            asked_ms: now_ms,
            until_ms: now_ms + self.limit_ms,
        };
        self.asked = vec![now_ms];
        true
    }

    /// Scores `a` against `question` (the one at `a.question`), recording it.
    ///
    /// Errors: a [`Refusal`]; [`Refusal::AlreadyScored`] carries the first answer.
    pub fn answer(&mut self, a: &TriviaAnswer, question: &Question) -> Result<Scored, Refusal> {
        if let Some(s) = self.answers.iter().find(|s| s.question == a.question && s.player == a.player) {
            return Err(Refusal::AlreadyScored(s.clone()));
        }
        let current = match self.phase {
            Phase::Asking { index, .. } => Some(index),
            Phase::Finished { .. } => None,
            Phase::Lobby { .. } => return Err(Refusal::NotOpen),
        };
        // a question not asked yet; or one that closed, unless the answer came in time
        let asked_ms = *self.asked.get(a.question as usize).ok_or(Refusal::NotOpen)?;
        if current.is_some_and(|i| a.question > i) {
            return Err(Refusal::NotOpen);
        }
        let on_time = a.at_ms <= asked_ms + self.limit_ms;
        let closed = current != Some(a.question);
        let player = self.players.get_mut(&a.player).ok_or(Refusal::NotAPlayer)?;
        if player.dropped {
            return Err(Refusal::Dropped);
        }
        match (on_time, closed) {
            (false, false) => return Err(Refusal::Late),
            (false, true) => return Err(Refusal::NotOpen),
            _ => {}
        }
        if usize::from(a.option) >= question.options.len() {
            return Err(Refusal::NoSuchOption);
        }
        let correct = a.option == question.correct;
        let elapsed_ms = a.at_ms.saturating_sub(asked_ms);
        let points = scoring::points(correct, elapsed_ms, self.limit_ms);
        // an answer counted after its question closed earns its points, but the streak
        // has moved on without it
        let bonus = if correct && !closed { scoring::streak_bonus(player.streak) } else { 0 };
        if !closed {
            player.streak = if correct { player.streak + 1 } else { 0 };
            player.best_streak = player.best_streak.max(player.streak);
            player.misses = 0;
        }
        player.correct += u32::from(correct);
        player.score += u64::from(points + bonus);
        if player.name.is_empty() {
            player.name = a.name.clone();
        }
        let scored = Scored {
            question: a.question,
            player: a.player,
            option: a.option,
            correct,
            points,
            bonus,
            streak: player.streak,
            elapsed_ms,
            at_ms: a.at_ms,
        };
        self.answers.push(scored.clone());
        Ok(scored)
    }

    /// Whether every player still in has answered the open question.
    pub fn all_answered(&self) -> bool {
        let Some(index) = self.asking() else { return false };
        self.active()
            .all(|(id, _)| self.answers.iter().any(|s| s.question == index && s.player == *id))
    }

    /// Whether the clock should move the game on at `now_ms`: a deadline passed, or
    /// (for a question) everyone answered.
    pub fn due(&self, now_ms: u64) -> bool {
        match self.phase {
            Phase::Lobby { until_ms } => now_ms >= until_ms,
            Phase::Asking { until_ms, .. } => now_ms >= until_ms || self.all_answered(),
            Phase::Finished { .. } => false,
        }
    }

    /// Ends the open question at `now_ms`: those who did not answer missed it (their
    /// streak ends; after [`MAX_MISSES`] in a row they drop out), then the next
    /// question opens, or the game finishes (last question, or nobody left).
    pub fn end_question(&mut self, now_ms: u64) -> Ended {
        let Some(index) = self.asking() else {
            return Ended::default();
        };
        let answered: Vec<i64> = self.answers.iter().filter(|s| s.question == index).map(|s| s.player).collect();
        let mut ended = Ended::default();
        for (id, p) in self.players.iter_mut().filter(|(_, p)| !p.dropped) {
            if answered.contains(id) {
                continue;
            }
            p.streak = 0;
            p.misses += 1;
            if p.misses >= MAX_MISSES {
                p.dropped = true;
                p.dropped_at = Some(index);
                ended.dropped.push(*id);
            }
        }
        let next = index + 1;
        self.phase = if next as usize >= self.questions.len() || self.active().next().is_none() {
            Phase::Finished {
                at_ms: now_ms,
                cancelled: false,
            }
        } else {
            self.asked.push(now_ms);
            Phase::Asking {
                index: next,
                asked_ms: now_ms,
                until_ms: now_ms + self.limit_ms,
            }
        };
        ended
    }

    /// Stops the game now (its owner's `/stop`).
    pub fn stop(&mut self, now_ms: u64) {
        if !self.is_finished() {
            self.phase = Phase::Finished {
                at_ms: now_ms,
                cancelled: self.answers.is_empty(),
            };
        }
    }

    /// The clock's move at `now_ms`, if one is due: the lobby starts (with
    /// `questions()` drawn then) or is cancelled; a question ends. Returns whether the
    /// game changed.
    pub fn tick(&mut self, now_ms: u64, questions: impl FnOnce() -> Vec<String>) -> bool {
        if !self.due(now_ms) {
            return false;
        }
        match self.phase {
            Phase::Lobby { .. } => {
                self.start(questions(), now_ms);
            }
            Phase::Asking { .. } => {
                self.end_question(now_ms);
            }
            Phase::Finished { .. } => return false,
        }
        true
    }

    /// Players by score, best first (ties: more correct, then who joined first).
    pub fn standings(&self) -> Vec<(i64, &Player)> {
        let mut v: Vec<(i64, &Player)> = self.players.iter().map(|(id, p)| (*id, p)).collect();
        v.sort_by(|a, b| b.1.score.cmp(&a.1.score).then(b.1.correct.cmp(&a.1.correct)));
        v
    }

    /// The scored answers to question `index`.
    pub fn answers_to(&self, index: u32) -> impl Iterator<Item = &Scored> {
        self.answers.iter().filter(move |s| s.question == index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_schemas::AnswerVia;

    fn question() -> Question {
        Question {
            id: "q".into(),
            category: "C".into(),
            difficulty: super::super::bank::Difficulty::Easy,
            text: "2+2?".into(),
            options: vec!["3".into(), "4".into()],
            correct: 1,
        }
    }

    fn setup(id: &str, mode: Mode, chat_id: i64, questions: Vec<String>) -> Setup {
        Setup {
            id: id.into(),
            mode,
            chat_id,
            pool: Pool::default(),
            questions,
            limit_ms: 20_000,
            now_ms: 0,
        }
    }

    fn group(players: &[i64]) -> Game {
        let mut g = Game::lobby(setup("g1", Mode::Group, -100, Vec::new()), (players[0], "P".into()), 60_000);
        for p in &players[1..] {
            g.join(*p, format!("P{p}")).unwrap();
        }
        assert!(g.start(vec!["q".into(); 10], 1_000));
        g
    }

    fn answer(g: &Game, player: i64, option: u8, at_ms: u64) -> TriviaAnswer {
        TriviaAnswer::new(&g.id, g.asking().unwrap_or(0), player, option, at_ms, AnswerVia::Button, "")
    }

    #[test]
    fn each_player_scores_a_question_once() {
        let mut g = group(&[1, 2]);
        let first = g.answer(&answer(&g, 1, 1, 6_000), &question()).unwrap();
        // 5 s of 20: 875
        assert_eq!((first.points, first.bonus, first.streak), (875, 0, 1));
        let again = g.answer(&answer(&g, 1, 0, 7_000), &question());
        assert_eq!(again, Err(Refusal::AlreadyScored(first)));
        assert_eq!(g.players[&1].score, 875);
        assert!(!g.all_answered());
        g.answer(&answer(&g, 2, 0, 2_000), &question()).unwrap();
        assert!(g.all_answered() && g.due(2_000));
    }

    #[test]
    fn streaks_earn_a_bonus_and_a_miss_ends_them() {
        let mut g = group(&[1, 2]);
        let mut totals = Vec::new();
        for q in 0..4u32 {
            let at = g.asking().map(|_| match g.phase {
                Phase::Asking { asked_ms, .. } => asked_ms,
                _ => 0,
            });
            let s = g.answer(&answer(&g, 1, 1, at.unwrap()), &question()).unwrap();
            totals.push((s.points, s.bonus));
            // player 2 answers the first two only
            if q < 2 {
                g.answer(&answer(&g, 2, 1, at.unwrap()), &question()).unwrap();
            }
            g.end_question(at.unwrap() + 20_000);
        }
        assert_eq!(totals, [(1000, 0), (1000, 100), (1000, 200), (1000, 300)]);
        assert_eq!(g.players[&1].best_streak, 4);
        assert_eq!((g.players[&2].streak, g.players[&2].misses, g.players[&2].dropped), (0, 2, false));
    }

    #[test]
    fn three_misses_in_a_row_drop_a_player() {
        let mut g = group(&[1, 2, 3]);
        for _ in 0..3 {
            let at = match g.phase {
                Phase::Asking { asked_ms, .. } => asked_ms,
                _ => unreachable!(),
            };
            g.answer(&answer(&g, 1, 1, at), &question()).unwrap();
            g.answer(&answer(&g, 2, 0, at), &question()).unwrap();
            let ended = g.end_question(at + 20_000);
            assert_eq!(ended.dropped.is_empty(), g.players[&3].misses < MAX_MISSES);
        }
        assert!(g.players[&3].dropped);
        assert_eq!(g.answer(&answer(&g, 3, 1, 70_000), &question()), Err(Refusal::Dropped));
        // the question ends once the two left have answered
        g.answer(&answer(&g, 1, 1, 70_000), &question()).unwrap();
        g.answer(&answer(&g, 2, 1, 70_000), &question()).unwrap();
        assert!(g.all_answered());
    }

    #[test]
    fn late_or_wrong_question_answers_are_refused() {
        let mut g = group(&[1, 2]);
        assert_eq!(g.answer(&answer(&g, 1, 1, 21_001), &question()), Err(Refusal::Late));
        let mut other = answer(&g, 1, 1, 2_000);
        other.question = 3;
        assert_eq!(g.answer(&other, &question()), Err(Refusal::NotOpen));
        assert_eq!(g.answer(&answer(&g, 9, 1, 2_000), &question()), Err(Refusal::NotAPlayer));
        assert_eq!(g.answer(&answer(&g, 1, 7, 2_000), &question()), Err(Refusal::NoSuchOption));
    }

    #[test]
    fn an_answer_sent_in_time_counts_when_processed_after_the_question_closed() {
        let mut g = group(&[1, 2]);
        // question 0 asked at 1 s, open until 21 s; the clock ends it at 21 s while the
        // answers (received at 5 s and 6 s) are still in a backlog
        g.end_question(21_000);
        assert_eq!(g.asking(), Some(1));
        let s = g.answer(&TriviaAnswer::new("g1", 0, 1, 1, 5_000, AnswerVia::Button, ""), &question()).unwrap();
        assert_eq!((s.points, s.bonus), (900, 0));
        assert_eq!(g.players[&1].score, 900);
        assert_eq!(g.players[&1].streak, 0, "the streak moved on without it");
        // received after its time: refused, even late
        assert_eq!(g.answer(&TriviaAnswer::new("g1", 0, 2, 1, 21_001, AnswerVia::Button, ""), &question()), Err(Refusal::NotOpen));
        // a question not asked yet
        assert_eq!(g.answer(&TriviaAnswer::new("g1", 5, 2, 1, 22_000, AnswerVia::Button, ""), &question()), Err(Refusal::NotOpen));
    }

    #[test]
    fn a_lobby_without_two_players_is_cancelled() {
        let mut g = Game::lobby(setup("g", Mode::Group, -1, Vec::new()), (1, "A".into()), 60_000);
        assert!(!g.tick(59_999, Vec::new));
        assert!(g.tick(60_000, || vec!["q".into()]));
        assert_eq!(g.phase, Phase::Finished { at_ms: 60_000, cancelled: true });
    }

    #[test]
    fn the_last_question_finishes_the_game() {
        let mut g = Game::solo(setup("p", Mode::Private, 1, vec!["q".into(); 2]), (1, "A".into()));
        assert!(g.tick(20_000, Vec::new));
        assert_eq!(g.asking(), Some(1));
        assert!(g.tick(40_000, Vec::new));
        assert!(g.is_finished());
    }
}
