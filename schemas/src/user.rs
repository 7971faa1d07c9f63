//! The core user record, a user's paid access, and signals' per-user preferences.
//!
//! Each lives in its own KV bucket, keyed by the user id: the core's [`User`] in
//! `herald_users`, [`Access`] in `herald_access` (the core's, written by the product
//! that sells access, read by products that gate on it), signals' [`SignalsPrefs`] in
//! `herald_signals_users`. Records written before the split ([`LegacyUser`], version 1 of
//! `herald_users`) are migrated at start-up (see `herald_pipeline::core::migrate`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{one, Chain, Versioned};

/// A user as the core knows them, in `herald_users`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct User {
    #[serde(default = "one")]
    pub v: u32,
    pub user_id: i64,
    /// Private chat the bot writes to.
    pub chat_id: i64,
    /// Telegram's `language_code` at `/start` (IETF tag), if it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// False once Telegram answered 403 (the user blocked the bot).
    pub active: bool,
    /// Locked by an admin: nothing but /start and /help, no broadcasts.
    #[serde(default)]
    pub locked: bool,
    /// When the user first sent /start (ms since epoch).
    #[serde(default)]
    pub created_at_ms: u64,
    /// Who brought the user (a `/start ref<id>` deep link), if anyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<i64>,
    pub updated_at_ms: u64,
}

impl User {
    /// A new active user.
    pub fn new(user_id: i64, chat_id: i64, now_ms: u64) -> Self {
        User {
            v: 2,
            user_id,
            chat_id,
            language: None,
            active: true,
            locked: false,
            created_at_ms: now_ms,
            referrer: None,
            updated_at_ms: now_ms,
        }
    }

    /// Whether the user can be sent anything unasked.
    pub fn reachable(&self) -> bool {
        self.active && !self.locked
    }
}

impl Versioned for User {
    const VERSION: u32 = 2;
    const SCHEMA_NAME: &'static str = "user";
    fn version(&self) -> u32 {
        self.v
    }
}

/// Until when a user has paid access (a subscription or trial), in `herald_access`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Access {
    #[serde(default = "one")]
    pub v: u32,
    pub user_id: i64,
    /// Paid up to this time (ms since epoch; `u64::MAX`: for good); `None`: never.
    #[serde(default)]
    pub paid_until_ms: Option<u64>,
    /// The reference of the last grant (a purchase, an admin's extension), so a
    /// redelivered grant extends once.
    #[serde(default)]
    pub last_grant: Option<String>,
    #[serde(default)]
    pub updated_at_ms: u64,
}

impl Access {
    /// No access yet.
    pub fn none(user_id: i64) -> Self {
        Access {
            v: 1,
            user_id,
            ..Default::default()
        }
    }

    /// Whether access runs past `now_ms`.
    pub fn paid_at(&self, now_ms: u64) -> bool {
        self.paid_until_ms.is_some_and(|t| t > now_ms)
    }
}

impl Versioned for Access {
    const VERSION: u32 = 1;
    const SCHEMA_NAME: &'static str = "access";
    fn version(&self) -> u32 {
        self.v
    }
}

/// A user's signal filters; `None` or empty means "no constraint".
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Filters {
    /// Minimum caller win rate in `[0, 1]`; one new caller must reach it.
    #[serde(default)]
    pub min_win_rate: Option<f64>,
    /// Minimum caller average gain in percent (see [`crate::ChannelStats::avg_gain_pct`]).
    #[serde(default)]
    pub min_avg_gain_pct: Option<f64>,
    /// FDV range in USD, inclusive.
    #[serde(default)]
    pub min_fdv_usd: Option<f64>,
    #[serde(default)]
    pub max_fdv_usd: Option<f64>,
    /// Chains to receive; empty = all.
    #[serde(default)]
    pub chains: Vec<Chain>,
}

/// Signals' part of a user, in `herald_signals_users`: absent until the user changes
/// something (then the defaults: not paused, no filters).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct SignalsPrefs {
    #[serde(default = "one")]
    pub v: u32,
    pub user_id: i64,
    /// Set by /pause, cleared by /resume (and /start).
    #[serde(default)]
    pub paused: bool,
    #[serde(default)]
    pub filters: Filters,
    #[serde(default)]
    pub updated_at_ms: u64,
    /// The preset the user follows (`filters` are its filters, rewritten when an admin
    /// edits it); `None`: the filters are the user's own (a copy once they change one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
}

impl SignalsPrefs {
    /// The defaults: not paused, no filters.
    pub fn new(user_id: i64) -> Self {
        SignalsPrefs {
            v: 1,
            user_id,
            ..Default::default()
        }
    }
}

impl Versioned for SignalsPrefs {
    const VERSION: u32 = 1;
    const SCHEMA_NAME: &'static str = "signals_prefs";
    fn version(&self) -> u32 {
        self.v
    }
}

/// A `herald_users` record as written before the core record was split (version 1,
/// `user_settings.v1`, whose schema file `schemas/json/user_settings.v1.json` stays as
/// that version published it): the core's fields plus signals' and payments' parts.
/// Read only by the migration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LegacyUser {
    #[serde(default = "one")]
    pub v: u32,
    pub user_id: i64,
    pub chat_id: i64,
    pub active: bool,
    #[serde(default)]
    pub paused: bool,
    #[serde(default)]
    pub filters: Filters,
    #[serde(default)]
    pub updated_at_ms: u64,
    #[serde(default)]
    pub paid_until_ms: Option<u64>,
    #[serde(default)]
    pub last_purchase: Option<String>,
    #[serde(default)]
    pub locked: bool,
}

impl LegacyUser {
    /// The core record it becomes (created at its last update: v1 kept no creation time).
    pub fn core(&self) -> User {
        User {
            v: 2,
            user_id: self.user_id,
            chat_id: self.chat_id,
            language: None,
            active: self.active,
            locked: self.locked,
            created_at_ms: self.updated_at_ms,
            referrer: None,
            updated_at_ms: self.updated_at_ms,
        }
    }

    /// Its access.
    pub fn access(&self) -> Access {
        Access {
            v: 1,
            user_id: self.user_id,
            paid_until_ms: self.paid_until_ms,
            last_grant: self.last_purchase.clone(),
            updated_at_ms: self.updated_at_ms,
        }
    }

    /// Its signals preferences.
    pub fn signals(&self) -> SignalsPrefs {
        SignalsPrefs {
            v: 1,
            user_id: self.user_id,
            paused: self.paused,
            filters: self.filters.clone(),
            updated_at_ms: self.updated_at_ms,
            preset: None,
        }
    }
}

impl Versioned for LegacyUser {
    const VERSION: u32 = 1;
    const SCHEMA_NAME: &'static str = "user_settings";
    fn version(&self) -> u32 {
        self.v
    }
}
