//! The question bank: Open Trivia DB questions, decoded once, and how a game picks
//! from them.
//!
//! OpenTDB serves texts HTML-entity encoded (`&quot;`, `&#039;`, `&eacute;`); they are
//! decoded here, at load, so nothing downstream ever sees an entity. Texts sent with
//! `parse_mode=HTML` are escaped again by whoever builds the message.

use std::collections::{HashMap, HashSet};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The bank built into the binary: 300 opentdb questions (CC BY-SA 4.0, see
/// `pipeline/fixtures/SOURCES.md`).
pub const SAMPLE: &str = include_str!("../../../fixtures/trivia_sample300.json");

/// Who made the questions, as their licence (CC BY-SA 4.0) asks to be credited.
pub const ATTRIBUTION: &str = "Questions: Open Trivia Database (opentdb.com), CC BY-SA 4.0";

/// A question's difficulty, as opentdb grades it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Difficulty {
    Easy,
    Medium,
    Hard,
}

impl Difficulty {
    pub const ALL: [Difficulty; 3] = [Difficulty::Easy, Difficulty::Medium, Difficulty::Hard];

    /// `easy`, `medium`, `hard`.
    pub fn as_str(self) -> &'static str {
        match self {
            Difficulty::Easy => "easy",
            Difficulty::Medium => "medium",
            Difficulty::Hard => "hard",
        }
    }

    /// Parses `easy`/`medium`/`hard` in any case.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str().eq_ignore_ascii_case(s))
    }
}

/// One question, decoded, its options in the order players see them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Question {
    /// 16 hex digits of SHA-256(question + "\n" + correct answer): stable across
    /// imports, so seen-lists, flags and cached explanations survive a reload.
    pub id: String,
    pub category: String,
    pub difficulty: Difficulty,
    pub text: String,
    /// 2 (true/false) or 4 options; `True`, `False` in that order for true/false,
    /// otherwise shuffled by the id, so every player and every redelivery sees one order.
    pub options: Vec<String>,
    /// Index of the right option in `options`.
    pub correct: u8,
}

/// opentdb's `api.php` result shape.
#[derive(Deserialize)]
struct Dump {
    results: Vec<RawQuestion>,
}

#[derive(Deserialize)]
struct RawQuestion {
    #[serde(rename = "type")]
    kind: String,
    difficulty: String,
    category: String,
    question: String,
    correct_answer: String,
    incorrect_answers: Vec<String>,
}

/// Telegram's quiz-poll limits (core.telegram.org/bots/api#sendpoll): a question of
/// 1–300 characters, 2–10 options of 1–100 characters each.
const POLL_QUESTION_LIMIT: usize = 300;
/// What the poll puts before a question: `k/n · ` (`present`), at most `50/50 · ` with
/// games of up to 50 questions (`--trivia-questions`).
pub const POLL_PREFIX_ROOM: usize = 8;
/// The longest question a poll carries whole, after its prefix (issue 21: a question of
/// exactly 300 characters passed the importer and lost its end).
const MAX_QUESTION: usize = POLL_QUESTION_LIMIT - POLL_PREFIX_ROOM;
const MAX_OPTION: usize = 100;

/// Decodes every HTML entity (named, decimal, hex) and trims.
///
/// ```
/// use herald_pipeline::products::trivia::bank::decode;
/// assert_eq!(decode("The band &quot;Panic! At the Disco&quot; &amp; Beyonc&eacute;&#039;s"), "The band \"Panic! At the Disco\" & Beyoncé's");
/// ```
pub fn decode(s: &str) -> String {
    html_escape::decode_html_entities(s).trim().to_string()
}

impl Question {
    fn from_raw(raw: RawQuestion) -> Result<Self, String> {
        let text = decode(&raw.question);
        let correct = decode(&raw.correct_answer);
        let wrong: Vec<String> = raw.incorrect_answers.iter().map(|a| decode(a)).collect();
        let difficulty = Difficulty::parse(&raw.difficulty).ok_or_else(|| format!("unknown difficulty {:?}", raw.difficulty))?;
        if text.is_empty() || text.chars().count() > MAX_QUESTION {
            return Err(format!(
                "question of {} characters (a quiz poll carries 1–{MAX_QUESTION} after its `k/n · ` prefix)",
                text.chars().count()
            ));
        }
        if wrong.is_empty() || wrong.len() > 9 {
            return Err(format!("{} wrong answers (a poll has 2–10 options)", wrong.len()));
        }
        let mut all = wrong.clone();
        all.push(correct.clone());
        if all.iter().any(|o| o.is_empty() || o.chars().count() > MAX_OPTION) {
            return Err(format!("an answer is empty or over {MAX_OPTION} characters"));
        }
        if wrong.contains(&correct) || all.iter().collect::<HashSet<_>>().len() != all.len() {
            return Err("the answers are not distinct".into());
        }
        let digest = Sha256::digest(format!("{text}\n{correct}").as_bytes());
        let id = hex::encode(&digest[..8]);
        let options = match raw.kind.as_str() {
            "boolean" => vec!["True".to_string(), "False".to_string()],
            _ => {
                let seed = u64::from_be_bytes(digest[8..16].try_into().expect("8 bytes"));
                all.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
                all
            }
        };
        let correct = options
            .iter()
            .position(|o| *o == correct)
            .ok_or("a true/false question whose answer is neither True nor False")? as u8;
        Ok(Question {
            id,
            category: decode(&raw.category),
            difficulty,
            text,
            options,
            correct,
        })
    }
}

/// What a game draws from.
#[derive(Debug, Default)]
pub struct Bank {
    pub questions: Vec<Question>,
    by_id: HashMap<String, usize>,
    /// Category names, sorted.
    pub categories: Vec<String>,
    /// Questions left out at load, with why (too long for a poll, duplicates).
    pub skipped: Vec<String>,
}

/// Which questions a game may draw.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pool {
    pub category: Option<String>,
    pub difficulty: Option<Difficulty>,
}

impl Pool {
    /// A short key naming the pool: `any`, `c=History`, `c=History;d=hard`, ...
    pub fn key(&self) -> String {
        let mut parts = Vec::new();
        if let Some(c) = &self.category {
            parts.push(format!("c={c}"));
        }
        if let Some(d) = self.difficulty {
            parts.push(format!("d={}", d.as_str()));
        }
        if parts.is_empty() {
            "any".into()
        } else {
            parts.join(";")
        }
    }

    /// `History · hard`, `any category`.
    pub fn describe(&self) -> String {
        let c = self.category.clone().unwrap_or_else(|| "any category".into());
        match self.difficulty {
            Some(d) => format!("{c} · {}", d.as_str()),
            None => c,
        }
    }
}

impl Bank {
    /// Loads an opentdb dump (`{"results": [...]}`), decoding entities. Questions that
    /// cannot be a Telegram quiz poll, or repeat one already loaded, are skipped and
    /// listed in [`Bank::skipped`].
    ///
    /// Errors: not JSON of that shape, or no usable question.
    pub fn from_opentdb(json: &str) -> anyhow::Result<Self> {
        let dump: Dump = serde_json::from_str(json).map_err(|e| anyhow::anyhow!("not an opentdb dump: {e}"))?;
        let mut bank = Bank::default();
        for (i, raw) in dump.results.into_iter().enumerate() {
            match Question::from_raw(raw) {
                Ok(q) if bank.by_id.contains_key(&q.id) => bank.skipped.push(format!("#{i}: a duplicate of {}", q.id)),
                Ok(q) => {
                    bank.by_id.insert(q.id.clone(), bank.questions.len());
                    bank.questions.push(q);
                }
                Err(e) => bank.skipped.push(format!("#{i}: {e}")),
            }
        }
        anyhow::ensure!(!bank.questions.is_empty(), "the dump has no usable question");
        let cats: HashSet<&str> = bank.questions.iter().map(|q| q.category.as_str()).collect();
        bank.categories = cats.into_iter().map(str::to_string).collect();
        bank.categories.sort();
        Ok(bank)
    }

    /// The built-in sample.
    pub fn sample() -> Self {
        Self::from_opentdb(SAMPLE).expect("the built-in sample loads")
    }

    pub fn get(&self, id: &str) -> Option<&Question> {
        self.by_id.get(id).map(|i| &self.questions[*i])
    }

    /// The ids of the questions in `pool`, minus `excluded` (quarantined ones).
    pub fn pool(&self, pool: &Pool, excluded: &HashSet<String>) -> Vec<&str> {
        self.questions
            .iter()
            .filter(|q| pool.category.as_ref().is_none_or(|c| *c == q.category))
            .filter(|q| pool.difficulty.is_none_or(|d| d == q.difficulty))
            .filter(|q| !excluded.contains(&q.id))
            .map(|q| q.id.as_str())
            .collect()
    }

    /// The category whose name starts with (or contains) `word`, case-insensitively:
    /// `history` -> `History`, `film` -> `Entertainment: Film`.
    pub fn category(&self, word: &str) -> Option<&str> {
        let w = word.to_lowercase();
        let by = |f: &dyn Fn(&str) -> bool| self.categories.iter().find(|c| f(&c.to_lowercase())).map(String::as_str);
        by(&|c| c == w).or_else(|| by(&|c| c.starts_with(&w))).or_else(|| by(&|c| c.contains(&w)))
    }
}

/// What [`pick`] drew.
#[derive(Debug, Clone, PartialEq)]
pub struct Picked {
    pub ids: Vec<String>,
    /// The player had seen the whole pool: their seen-list for it starts again, with
    /// `ids` in it.
    pub restarted: bool,
}

/// Draws `n` questions from `pool` for a player who has seen `seen`: unseen ones first;
/// only when fewer than `n` are unseen does the pool start over (the unseen rest, then
/// others not just drawn). A player never gets a question twice before the whole pool
/// has been seen.
///
/// ```
/// use std::collections::HashSet;
/// use herald_pipeline::products::trivia::bank::pick;
/// let pool = ["a", "b", "c"];
/// let seen: HashSet<String> = ["a".to_string(), "b".to_string()].into();
/// let p = pick(&pool, &seen, 2, 7);
/// assert_eq!(p.ids[0], "c");
/// assert!(p.restarted);
/// ```
pub fn pick(pool: &[&str], seen: &HashSet<String>, n: usize, seed: u64) -> Picked {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut unseen: Vec<&str> = pool.iter().copied().filter(|id| !seen.contains(*id)).collect();
    unseen.shuffle(&mut rng);
    if unseen.len() >= n {
        return Picked {
            ids: unseen[..n].iter().map(|s| s.to_string()).collect(),
            restarted: false,
        };
    }
    let mut rest: Vec<&str> = pool.iter().copied().filter(|id| seen.contains(*id)).collect();
    rest.shuffle(&mut rng);
    let ids: Vec<String> = unseen.into_iter().chain(rest).take(n).map(str::to_string).collect();
    Picked { ids, restarted: true }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_loads_with_no_entity_left() {
        let bank = Bank::sample();
        assert!(bank.questions.len() >= 290, "{} loaded, skipped {:?}", bank.questions.len(), bank.skipped);
        let entity = regex::Regex::new(r"&(#[0-9]+|#x[0-9a-fA-F]+|[a-zA-Z]+);").unwrap();
        for q in &bank.questions {
            for text in std::iter::once(&q.text).chain(&q.options).chain([&q.category]) {
                assert!(!entity.is_match(text), "{:?} still has an entity", text);
            }
        }
        // one the raw sample encodes: `The band &quot;Panic! At the Disco&quot; ...`
        assert!(bank.questions.iter().any(|q| q.text == "The band \"Panic! At the Disco\" has released 4 albums total"));
        assert!(bank.categories.contains(&"Science & Nature".to_string()));
    }

    #[test]
    fn options_keep_one_order_and_the_answer() {
        let a = Bank::sample();
        let b = Bank::sample();
        for (x, y) in a.questions.iter().zip(&b.questions) {
            assert_eq!(x.options, y.options);
            assert!((x.correct as usize) < x.options.len());
        }
        // the right answer is not always in the same place
        let places: HashSet<u8> = a.questions.iter().filter(|q| q.options.len() == 4).map(|q| q.correct).collect();
        assert_eq!(places.len(), 4);
    }

    #[test]
    fn no_question_repeats_before_the_pool_is_exhausted() {
        let pool: Vec<String> = (0..23).map(|i| format!("q{i}")).collect();
        let pool: Vec<&str> = pool.iter().map(String::as_str).collect();
        let mut seen = HashSet::new();
        let mut drawn = Vec::new();
        // 23 questions, 5 a game: games 1–4 draw 20 distinct, game 5 the last 3 then restarts
        for game in 0..5u64 {
            let p = pick(&pool, &seen, 5, game);
            assert_eq!(p.ids.len(), 5);
            assert_eq!(p.ids.iter().collect::<HashSet<_>>().len(), 5, "a repeat within a game");
            if p.restarted {
                let fresh: Vec<&String> = p.ids.iter().filter(|id| !seen.contains(*id)).collect();
                assert_eq!(fresh.len(), 23 - seen.len(), "every unseen question comes first");
                assert_eq!(game, 4);
                seen = p.ids.iter().cloned().collect();
            } else {
                assert!(p.ids.iter().all(|id| !seen.contains(id)), "game {game} repeated a question");
                seen.extend(p.ids.iter().cloned());
            }
            drawn.extend(p.ids);
        }
        assert_eq!(drawn[..23].iter().collect::<HashSet<_>>().len(), 23);
    }

    #[test]
    fn categories_match_by_word() {
        let bank = Bank::sample();
        assert_eq!(bank.category("history"), Some("History"));
        assert_eq!(bank.category("film"), Some("Entertainment: Film"));
        assert_eq!(bank.category("nonsense-xyz"), None);
    }

    #[test]
    fn bad_dumps_are_refused_and_bad_questions_skipped() {
        assert!(Bank::from_opentdb("[]").is_err());
        let long = "x".repeat(301);
        let dump = format!(
            r#"{{"results":[{{"type":"multiple","difficulty":"easy","category":"C","question":"{long}","correct_answer":"a","incorrect_answers":["b","c","d"]}},
            {{"type":"boolean","difficulty":"easy","category":"C","question":"Q&#039;s?","correct_answer":"True","incorrect_answers":["False"]}}]}}"#
        );
        let bank = Bank::from_opentdb(&dump).unwrap();
        assert_eq!(bank.questions.len(), 1);
        assert_eq!(bank.questions[0].text, "Q's?");
        assert_eq!(bank.skipped.len(), 1);
    }

    #[test]
    fn a_question_is_imported_only_if_the_poll_carries_it_whole() {
        let widest_prefix = format!("{}/{} · ", 50, 50);
        assert_eq!(widest_prefix.chars().count(), POLL_PREFIX_ROOM);
        // the question of `len` characters, and a short one so the dump is usable
        let dump = |len: usize| {
            format!(
                r#"{{"results":[{{"type":"boolean","difficulty":"easy","category":"C","question":"{}","correct_answer":"True","incorrect_answers":["False"]}},
                {{"type":"boolean","difficulty":"easy","category":"C","question":"Short?","correct_answer":"True","incorrect_answers":["False"]}}]}}"#,
                "x".repeat(len)
            )
        };
        // the issue's case: exactly 300 characters is refused now
        for refused in [300, MAX_QUESTION + 1] {
            let bank = Bank::from_opentdb(&dump(refused)).unwrap();
            assert_eq!((bank.questions.len(), bank.skipped.len()), (1, 1), "{refused} characters");
        }
        let bank = Bank::from_opentdb(&dump(MAX_QUESTION)).unwrap();
        assert_eq!(bank.questions.len(), 2);
        let longest = bank.questions.iter().map(|q| q.text.chars().count()).max().unwrap();
        assert_eq!(longest, MAX_QUESTION);
        let carried = format!("{widest_prefix}{}", "x".repeat(longest));
        assert!(carried.chars().count() <= POLL_QUESTION_LIMIT, "{}", carried.chars().count());
    }
}
