//! Filter presets (seed 001: "presets for quick setup", "admin preset management"): a
//! named set of filters with a short description, in KV `herald_signals_presets`.
//!
//! - Admins: `/admin preset add NAME SETTINGS | DESCRIPTION`, `edit NAME SETTINGS [|
//!   DESCRIPTION]`, `remove NAME`, `list`. SETTINGS are `/filters` arguments separated
//!   by `;` (`winrate 60; fdv 10k 1m; chains solana,bsc`).
//! - Users: `/filters` shows the presets as buttons (`f:p:<name>`); a press **follows**
//!   the preset: the user's filters become its filters, and an admin's later edit
//!   rewrites them. Changing any filter oneself afterwards makes the filters one's own
//!   **copy** (the preset's later edits no longer reach them). Chosen so a newcomer gets
//!   the curated setup kept up to date, and anyone who tunes it keeps their tuning.
//! - A removed preset leaves its followers with their last filters, and tells them.
//!
//! The followers' filters are rewritten by the admin command's apply step (each with a
//! compare-and-set on their record, so a redelivery rewrites nothing twice); the fan-out
//! index follows `herald_signals_users` and sees the change without a restart.

use async_nats::jetstream::kv;
use futures::TryStreamExt;
use herald_runtime::records;
use herald_schemas::checks::ChainList;
use herald_schemas::{escape_html, Filters, SignalsPrefs};
use serde::{Deserialize, Serialize};

use super::commands::{edited, parse_filter_args};

/// The presets' KV bucket (events class, kept for good).
pub const BUCKET: &str = "herald_signals_presets";

/// Longest preset name, characters (`a-z 0-9 _ -`, so it fits callback data).
pub const MAX_NAME: usize = 24;
/// Longest description, characters.
pub const MAX_DESCRIPTION: usize = 120;

/// A preset as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preset {
    pub v: u32,
    pub name: String,
    pub description: String,
    pub filters: Filters,
    pub updated_at_ms: u64,
}

/// An admin's preset command.
#[derive(Debug, Clone, PartialEq)]
pub enum PresetCommand {
    Add { name: String, filters: Filters, description: String },
    /// The settings applied on top of the preset's filters; the description replaced
    /// when given.
    Edit { name: String, settings: Vec<String>, description: Option<String> },
    Remove { name: String },
    List,
}

/// The usage line.
pub const USAGE: &str = "<b>/admin preset</b> add NAME SETTINGS | DESCRIPTION · edit NAME SETTINGS [| DESCRIPTION] · \
remove NAME · list\nSETTINGS are /filters arguments separated by <code>;</code>, e.g. \
<code>/admin preset add gems winrate 60; fdv 10k 1m; chains solana | Proven callers, small caps</code>";

/// A preset name as stored: lowercase `a-z 0-9 _ -`, 1 to [`MAX_NAME`] characters.
///
/// ```
/// use herald_pipeline::products::signals::presets::name;
/// assert_eq!(name("Gems").as_deref(), Some("gems"));
/// assert_eq!(name("<b>x</b>"), None);
/// ```
pub fn name(s: &str) -> Option<String> {
    let n = s.trim().to_ascii_lowercase();
    let ok = (1..=MAX_NAME).contains(&n.len()) && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    ok.then_some(n)
}

/// `SETTINGS` (`/filters` arguments separated by `;`) applied to `base`.
///
/// Errors: the first setting refused, with its reason.
fn apply_settings(base: &Filters, settings: &[String], chains: &ChainList) -> Result<Filters, String> {
    settings
        .iter()
        .try_fold(base.clone(), |f, s| parse_filter_args(s, chains).and_then(|e| edited(&f, e)))
}

/// Parses `/admin preset …` (after `preset`).
///
/// Errors: the reason, for the admin (HTML): a bad name, a setting refused as `/filters`
/// would refuse it, a description too long, a missing part.
///
/// ```
/// use herald_pipeline::products::signals::presets::{parse, PresetCommand};
/// use herald_schemas::checks::ChainList;
/// let c = ChainList::default();
/// let PresetCommand::Add { name, filters, description } = parse("add gems winrate 60; chains solana | Proven", &c).unwrap() else { panic!() };
/// assert_eq!((name.as_str(), filters.min_win_rate, description.as_str()), ("gems", Some(0.6), "Proven"));
/// assert!(parse("add gems winrate 600 | x", &c).unwrap_err().contains("between 0 and 100"));
/// ```
pub fn parse(args: &str, chains: &ChainList) -> Result<PresetCommand, String> {
    let (body, description) = match args.split_once('|') {
        Some((b, d)) => (b, Some(d.trim().to_string())),
        None => (args, None),
    };
    if let Some(d) = &description {
        if d.chars().count() > MAX_DESCRIPTION {
            return Err(format!("A description is at most {MAX_DESCRIPTION} characters."));
        }
    }
    let mut words = body.split_whitespace();
    let sub = words.next().unwrap_or_default().to_ascii_lowercase();
    if sub == "list" {
        return Ok(PresetCommand::List);
    }
    let raw_name = words.next().unwrap_or_default();
    let name = name(raw_name).ok_or_else(|| {
        format!("A preset name is 1 to {MAX_NAME} of a-z, 0-9, _ and -.\n{USAGE}")
    })?;
    let rest: Vec<&str> = words.collect();
    let settings: Vec<String> = rest.join(" ").split(';').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
    match sub.as_str() {
        "add" => {
            let Some(description) = description.filter(|d| !d.is_empty()) else {
                return Err(format!("Give the preset a short description after <code>|</code>.\n{USAGE}"));
            };
            let filters = apply_settings(&Filters::default(), &settings, chains)?;
            Ok(PresetCommand::Add { name, filters, description })
        }
        "edit" if !settings.is_empty() || description.is_some() => {
            // checked now against the defaults; applied to the stored preset later
            apply_settings(&Filters::default(), &settings, chains)?;
            Ok(PresetCommand::Edit { name, settings, description })
        }
        "remove" => Ok(PresetCommand::Remove { name }),
        _ => Err(USAGE.into()),
    }
}

/// The presets store.
#[derive(Clone)]
pub struct Presets {
    pub kv: kv::Store,
}

impl Presets {
    /// Preset `name`, with its revision.
    ///
    /// Errors: KV unreachable or a value that does not decode.
    pub async fn get(&self, name: &str) -> anyhow::Result<Option<(Preset, u64)>> {
        match self.kv.entry(name).await? {
            Some(e) if e.operation == kv::Operation::Put => Ok(Some((serde_json::from_slice(&e.value)?, e.revision))),
            _ => Ok(None),
        }
    }

    /// Every preset, by name.
    ///
    /// Errors: KV unreachable.
    pub async fn all(&self) -> anyhow::Result<Vec<Preset>> {
        let keys: Vec<String> = match self.kv.keys().await {
            Ok(k) => k.try_collect().await?,
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for key in keys {
            if let Some((p, _)) = self.get(&key).await? {
                out.push(p);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Stores a new preset; `false` if one of that name exists (with the same filters
    /// and description: a redelivered add, found made).
    ///
    /// Errors: KV unreachable, or another preset of that name exists.
    pub async fn create(&self, p: &Preset) -> anyhow::Result<bool> {
        match self.kv.create(&p.name, serde_json::to_vec(p)?.into()).await {
            Ok(_) => Ok(true),
            Err(_) => match self.get(&p.name).await? {
                Some((old, _)) if old.filters == p.filters && old.description == p.description => Ok(false),
                Some(_) => anyhow::bail!("A preset {} exists: /admin preset edit it.", p.name),
                None => anyhow::bail!("KV refused preset {}", p.name),
            },
        }
    }

    /// Writes `p` over revision `revision`.
    ///
    /// Errors: KV unreachable, or changed meanwhile (the caller reads again).
    pub async fn update(&self, p: &Preset, revision: u64) -> anyhow::Result<()> {
        self.kv.update(&p.name, serde_json::to_vec(p)?.into(), revision).await?;
        Ok(())
    }

    /// Removes preset `name`; whether it existed.
    ///
    /// Errors: KV unreachable.
    pub async fn remove(&self, name: &str) -> anyhow::Result<bool> {
        if self.get(name).await?.is_none() {
            return Ok(false);
        }
        self.kv.delete(name).await?;
        Ok(true)
    }
}

/// The users following `name`, rewritten by `change` (compare-and-set each, read again
/// on a conflict); the ids of those whose record changed.
///
/// Errors: KV unreachable.
pub async fn rewrite_followers(prefs: &kv::Store, name: &str, change: impl Fn(&mut SignalsPrefs)) -> anyhow::Result<Vec<i64>> {
    let keys: Vec<String> = prefs.keys().await?.try_collect().await?;
    let mut changed = Vec::new();
    for user in keys.iter().filter_map(|k| k.parse::<i64>().ok()) {
        loop {
            let Some((current, revision)) = records::load::<SignalsPrefs>(prefs, user).await? else { break };
            if current.preset.as_deref() != Some(name) {
                break;
            }
            let mut next = current.clone();
            change(&mut next);
            if next == current {
                break;
            }
            next.updated_at_ms = herald_schemas::now_ms();
            if records::save(prefs, user, &next, Some(revision)).await.is_ok() {
                changed.push(user);
                break;
            }
            // the user changed something meanwhile: look again
        }
    }
    Ok(changed)
}

/// `/admin preset list`: name, description, filters in short, and followers.
pub fn list(presets: &[Preset], followers: impl Fn(&str) -> usize) -> String {
    if presets.is_empty() {
        return format!("No presets yet.\n{USAGE}");
    }
    let mut text = format!("<b>Presets</b> ({})", presets.len());
    for p in presets {
        text.push_str(&format!(
            "\n📌 <b>{}</b> — {} · {} · {} following",
            escape_html(&p.name),
            escape_html(&p.description),
            summary(&p.filters),
            followers(&p.name)
        ));
    }
    text
}

/// Filters in one line: `WR ≥60% · gain any · FDV 10K–1M · solana`.
pub fn summary(f: &Filters) -> String {
    let pct = |v: Option<f64>, scale: f64| v.map(|v| format!("≥{:.0}%", v * scale)).unwrap_or_else(|| "any".into());
    let usd = |v: Option<f64>| v.map(super::fanout::render::usd_compact).unwrap_or_else(|| "any".into());
    let chains = if f.chains.is_empty() {
        "all chains".to_string()
    } else {
        f.chains.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",")
    };
    format!(
        "WR {} · gain {} · FDV {}–{} · {chains}",
        pct(f.min_win_rate, 100.0),
        pct(f.min_avg_gain_pct, 1.0),
        usd(f.min_fdv_usd),
        usd(f.max_fdv_usd)
    )
}
