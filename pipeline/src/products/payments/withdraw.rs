//! `/withdraw`: a user's balance out to their own wallet, in the payout token (BEP-20).
//!
//! ```text
//! /withdraw AMOUNT ADDRESS   (or an amount button, to the address used last)
//!   -> checks (amount, minimum, fee, destination, balance)  -> req.<id> Requested
//!   -> [Confirm] wd:ok:<id>  -> daily caps counted -> ledger hold withdraw:<id>
//!        -> Approved: herald.withdrawals.approved.<chain> for herald-signer
//!        -> or Waiting (above the approval threshold): admins approve or reject
//!   -> [Cancel] wd:no:<id>   -> Cancelled (nothing held)
//! ```
//!
//! Every step is idempotent per request: the request's state moves by compare-and-set
//! before the money does (Confirm claims it as `Confirming`, a rejection moves it before
//! its hold is released),
//! the hold is keyed `withdraw:<id>`, the caps count by id, and what goes out (the
//! approved withdrawal, the messages) carries ids derived from the request, so a
//! redelivered update or a double tap changes nothing twice. The request id is
//! `wd-<user>-<update id>` of the `/withdraw` that made it. The whole amount is held;
//! the payout is the amount less the fee, in the token's base units.

use alloy::primitives::{Address, U256};
use async_nats::jetstream::kv;
use herald_runtime::{Effect, Output};
use herald_schemas::{escape_html, subjects, Button, Content, Withdrawal};
use serde::{Deserialize, Serialize};

use super::destination::destination;
use super::{caps, Payments};
use crate::core::kv_json;
use crate::core::ledger::money::{from_ledger, parse_usd, units, LEDGER_DECIMALS};
use crate::core::ledger::{Applied, Closed};
use crate::core::reply::{notice, output, Reply};

/// How long a confirmation button stays good: 10 minutes.
pub const CONFIRM_WITHIN_MS: u64 = 10 * 60 * 1000;

/// The payout token.
#[derive(Debug, Clone)]
pub struct PayoutToken {
    pub symbol: String,
    pub contract: Address,
    /// The contract's `decimals()`.
    pub decimals: u8,
}

/// The settings (`--withdraw-*`), amounts in ledger units (USD, 18 decimals).
#[derive(Debug, Clone)]
pub struct Rules {
    pub fee: U256,
    /// The smallest withdrawal, fee included.
    pub min: U256,
    pub user_daily: U256,
    pub wallet_daily: U256,
    /// Above this an admin approves.
    pub approval_above: U256,
    pub token: PayoutToken,
    /// The chain's name in subjects (`bsc`).
    pub chain: String,
}

impl Rules {
    /// The rules from the flags; `None` when `--withdrawals` is off.
    ///
    /// Errors: an amount is not a USD amount, the minimum does not exceed the fee, or
    /// `--withdraw-token` is not an accepted token.
    pub fn from_args(
        args: &super::config::WithdrawArgs,
        accepted: &[(Address, super::credit::DepositToken)],
        chain: &str,
    ) -> anyhow::Result<Option<Rules>> {
        if !args.withdrawals {
            return Ok(None);
        }
        let token = match &args.withdraw_token {
            Some(symbol) => accepted.iter().find(|(_, t)| t.symbol.eq_ignore_ascii_case(symbol)),
            None => accepted.first(),
        };
        let Some((contract, token)) = token else {
            anyhow::bail!("--withdraw-token: not one of --deposit-tokens")
        };
        let rules = Rules {
            fee: parse_usd(&args.withdraw_fee_usd)?,
            min: parse_usd(&args.withdraw_min_usd)?,
            user_daily: parse_usd(&args.withdraw_user_daily_usd)?,
            wallet_daily: parse_usd(&args.withdraw_daily_usd)?,
            approval_above: parse_usd(&args.withdraw_approval_above_usd)?,
            token: PayoutToken {
                symbol: token.symbol.clone(),
                contract: *contract,
                decimals: token.decimals,
            },
            chain: chain.to_string(),
        };
        anyhow::ensure!(rules.min > rules.fee, "--withdraw-min-usd must exceed --withdraw-fee-usd");
        Ok(Some(rules))
    }
}

/// Withdrawals, configured: the rules, the `herald_withdrawals` bucket, who approves.
pub struct Withdrawals {
    pub rules: Rules,
    /// `herald_withdrawals` (money): requests, daily caps, last addresses.
    pub store: kv::Store,
    /// Told of withdrawals waiting for approval.
    pub admins: Vec<i64>,
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Shown with its confirmation buttons; nothing held.
    Requested,
    /// Confirm pressed: its caps and hold being made (a crash here is finished by the
    /// redelivery, whatever the time).
    Confirming,
    Cancelled,
    /// Not confirmed within [`CONFIRM_WITHIN_MS`].
    Expired,
    /// Confirmed but refused (balance, a daily cap); nothing held.
    Refused,
    /// Held; above the threshold, waiting for an admin.
    Waiting,
    /// Held and handed to the signer.
    Approved,
    /// An admin said no; the hold released.
    Rejected,
}

/// One withdrawal request (`req.<id>`). Amounts in ledger units except `net`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub id: String,
    pub user_id: i64,
    pub chat_id: i64,
    /// Checksummed destination.
    pub to: String,
    /// What leaves the balance (fee included), ledger units.
    pub amount: String,
    pub fee: String,
    /// What the wallet receives, token base units.
    pub net: String,
    pub created_ms: u64,
    pub state: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The UTC day whose caps counted it (set on confirmation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<String>,
}

impl Request {
    fn amount(&self) -> U256 {
        self.amount.parse().unwrap_or_default()
    }

    /// The ledger hold's reference.
    pub fn hold(&self) -> String {
        format!("withdraw:{}", self.id)
    }
}

/// What a user or an admin asks of withdrawals.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `/withdraw [AMOUNT [ADDRESS]]`, or an amount button `wd:amt:<usd>` (to the last
    /// address).
    Start(String),
    /// `wd:ok:<id>`.
    Confirm(String),
    /// `wd:no:<id>`.
    Cancel(String),
    /// `/admin withdrawals`.
    List,
    /// `/admin approve ID` or `wd:yes:<id>`.
    Approve(String),
    /// `/admin reject ID REASON` or `wd:rej:<id>`.
    Reject(String, String),
    /// An admin's button pressed by someone else, or a button we do not know.
    Unknown,
}

/// The admin subcommands withdrawals answer.
pub const ADMIN_SUBCOMMANDS: &[&str] = &["withdrawals", "approve", "reject"];

impl Action {
    /// The action of a `wd:` button. Admin actions only for an admin (`admin`: the
    /// router checked the id).
    ///
    /// ```
    /// use herald_pipeline::products::payments::withdraw::Action;
    /// assert_eq!(Action::from_callback("wd:ok:wd-1-2", false), Some(Action::Confirm("wd-1-2".into())));
    /// assert_eq!(Action::from_callback("wd:amt:20 0xab", false), Some(Action::Start("20 0xab".into())));
    /// assert_eq!(Action::from_callback("wd:yes:wd-1-2", false), Some(Action::Unknown), "not an admin");
    /// ```
    pub fn from_callback(data: &str, admin: bool) -> Option<Action> {
        let (verb, id) = data.strip_prefix("wd:")?.split_once(':')?;
        let id = id.to_string();
        match (verb, admin) {
            ("amt", _) => Some(Action::Start(id)),
            ("ok", _) => Some(Action::Confirm(id)),
            ("no", _) => Some(Action::Cancel(id)),
            ("yes", true) => Some(Action::Approve(id)),
            ("rej", true) => Some(Action::Reject(id, "refused by an admin".into())),
            _ => Some(Action::Unknown),
        }
    }

    /// The action of an admin subcommand (`/admin` stripped), if it is one of
    /// [`ADMIN_SUBCOMMANDS`] with what it needs.
    ///
    /// ```
    /// use herald_pipeline::products::payments::withdraw::Action;
    /// assert_eq!(Action::from_admin("reject wd-1-2 looks like fraud"), Some(Action::Reject("wd-1-2".into(), "looks like fraud".into())));
    /// assert_eq!(Action::from_admin("withdrawals"), Some(Action::List));
    /// assert_eq!(Action::from_admin("approve"), None);
    /// ```
    pub fn from_admin(args: &str) -> Option<Action> {
        let (sub, rest) = args.trim().split_once(char::is_whitespace).unwrap_or((args.trim(), ""));
        let (id, reason) = rest.trim().split_once(char::is_whitespace).unwrap_or((rest.trim(), ""));
        match sub {
            "withdrawals" => Some(Action::List),
            "approve" if !id.is_empty() => Some(Action::Approve(id.to_string())),
            "reject" if !id.is_empty() => {
                let reason = if reason.trim().is_empty() { "refused by an admin" } else { reason.trim() };
                Some(Action::Reject(id.to_string(), reason.to_string()))
            }
            _ => None,
        }
    }

    /// Whether it changes state (the inbox runs those as its apply step): all but the
    /// list and the bare `/withdraw` menu.
    pub fn changes(&self) -> bool {
        !matches!(self, Action::List | Action::Unknown) && *self != Action::Start(String::new())
    }
}

/// Who asks, and the update that asks.
#[derive(Debug, Clone, Copy)]
pub struct Asker {
    pub user_id: i64,
    pub chat_id: i64,
    pub update_id: i64,
}

/// An answer: the reply to the asker, other messages (the approved withdrawal for the
/// signer, admins told), and what the action's effect found.
pub struct Answer {
    pub reply: Reply,
    pub outputs: Vec<Output>,
    pub effect: Effect,
}

impl Answer {
    fn read(text: impl Into<String>) -> Self {
        Answer {
            reply: Reply::plain(text),
            outputs: Vec::new(),
            effect: Effect::NotMade,
        }
    }
}

fn usd(amount: U256) -> String {
    format!("{} USD", units(amount, LEDGER_DECIMALS))
}

fn req_key(id: &str) -> String {
    format!("req.{id}")
}

fn last_address_key(user: i64) -> String {
    format!("addr.{user}")
}

impl Withdrawals {
    /// Answers `action` from `who`.
    ///
    /// Errors: NATS failed (the update is retried; every step is idempotent).
    pub async fn act(&self, p: &Payments, action: Action, who: Asker) -> anyhow::Result<Answer> {
        match action {
            Action::Start(args) if args.is_empty() => self.menu(p, who).await,
            Action::Start(args) => self.request(p, &args, who).await,
            Action::Confirm(id) => self.confirm(p, &id, who).await,
            Action::Cancel(id) => self.cancel(&id, who).await,
            Action::List => self.list().await,
            Action::Approve(id) => self.approve(&id).await,
            Action::Reject(id, reason) => self.reject(p, &id, &reason).await,
            Action::Unknown => Ok(Answer::read("That button is not for you.")),
        }
    }

    /// `/withdraw` alone: the rules, what is left today, and amount buttons to the last
    /// address used.
    async fn menu(&self, p: &Payments, who: Asker) -> anyhow::Result<Answer> {
        let r = &self.rules;
        let balance = p.ledger.balance(who.user_id).await?.0;
        let day = caps::day_of(herald_schemas::now_ms());
        let used = caps::used(&self.store, &caps::key(&day, Some(who.user_id))).await?;
        let left = r.user_daily.saturating_sub(used).min(balance);
        let mut text = format!(
            "<b>Withdraw</b> {} (BEP-20) to your wallet.\nBalance: {}\nFee: {} · minimum: {} · left today: {}\n\
             Above {} an admin approves first.\n\n<code>/withdraw AMOUNT ADDRESS</code>",
            escape_html(&r.token.symbol),
            usd(balance),
            usd(r.fee),
            usd(r.min),
            usd(left),
            usd(r.approval_above)
        );
        let last: Option<String> = kv_json::get(&self.store, &last_address_key(who.user_id)).await?;
        let mut buttons = Vec::new();
        if let Some(address) = last {
            text.push_str(&format!("\n\nOr an amount to <code>{}</code>:", escape_html(&address)));
            // whole dollars: the minimum (rounded up), half of what is left, all of it
            let one = U256::from(10).pow(U256::from(LEDGER_DECIMALS));
            let (min, most) = (r.min.div_ceil(one), left / one);
            let mut amounts = vec![min, most / U256::from(2), most];
            amounts.retain(|v| *v >= min && *v <= most);
            amounts.sort();
            amounts.dedup();
            let row: Vec<Button> = amounts
                .iter()
                .map(|v| Button::callback(format!("{v} USD"), format!("wd:amt:{v} {address}")))
                .filter(|b| b.callback_data.len() <= 64) // Telegram's limit on callback data
                .collect();
            if !row.is_empty() {
                buttons.push(row);
            }
        }
        Ok(Answer {
            reply: Reply::with_buttons(text, buttons),
            outputs: Vec::new(),
            effect: Effect::NotMade,
        })
    }

    /// `/withdraw AMOUNT ADDRESS`: checks it, stores the request, asks to confirm.
    async fn request(&self, p: &Payments, args: &str, who: Asker) -> anyhow::Result<Answer> {
        let r = &self.rules;
        let mut words = args.split_whitespace();
        let (Some(amount), Some(to)) = (words.next(), words.next()) else {
            return Ok(Answer::read("Send <code>/withdraw AMOUNT ADDRESS</code>, e.g. <code>/withdraw 25 0x…</code>."));
        };
        let Ok(amount) = parse_usd(amount.trim_start_matches('$')) else {
            return Ok(Answer::read(format!("{} is not an amount in USD.", escape_html(amount))));
        };
        if amount < r.min {
            return Ok(Answer::read(format!("The smallest withdrawal is {} (fee included).", usd(r.min))));
        }
        let net = amount - r.fee;
        let Some(net_units) = from_ledger(net, r.token.decimals) else {
            return Ok(Answer::read(format!("{} has more decimals than {} carries.", usd(amount), escape_html(&r.token.symbol))));
        };
        let own = super::addresses::existing(&p.addresses, &p.wallet, who.user_id).await?;
        let to = match destination(to, &p.tokens, own) {
            Ok(a) => a,
            Err(why) => return Ok(Answer::read(format!("Not sent: {why}."))),
        };
        let balance = p.ledger.balance(who.user_id).await?.0;
        if amount > balance {
            return Ok(Answer::read(format!("Your balance is {}; you asked for {}.", usd(balance), usd(amount))));
        }
        let id = format!("wd-{}-{}", who.user_id, who.update_id);
        let fresh = Request {
            id: id.clone(),
            user_id: who.user_id,
            chat_id: who.chat_id,
            to: to.to_checksum(None),
            amount: amount.to_string(),
            fee: r.fee.to_string(),
            net: net_units.to_string(),
            created_ms: herald_schemas::now_ms(),
            state: State::Requested,
            reason: None,
            day: None,
        };
        let mut made = false;
        let req = kv_json::update(&self.store, &req_key(&id), |current: Option<Request>| {
            made = current.is_none();
            current.is_none().then(|| fresh.clone())
        })
        .await?
        .unwrap_or(fresh);
        Ok(Answer {
            reply: self.confirmation(&req),
            outputs: Vec::new(),
            effect: if made { Effect::Made } else { Effect::AlreadyMade },
        })
    }

    fn confirmation(&self, req: &Request) -> Reply {
        let r = &self.rules;
        let net = req.net.parse::<U256>().unwrap_or_default();
        let text = format!(
            "<b>Confirm the withdrawal</b>\nAmount: {}\nFee: {}\nYou receive: {} {}\nTo: <code>{}</code> (BNB Smart Chain)\n\n\
             Check the address: a transfer cannot be undone. The buttons work for 10 minutes.",
            usd(req.amount()),
            usd(req.fee.parse().unwrap_or_default()),
            units(net, r.token.decimals),
            escape_html(&r.token.symbol),
            escape_html(&req.to)
        );
        Reply::with_buttons(
            text,
            vec![vec![
                Button::callback("✅ Confirm", format!("wd:ok:{}", req.id)),
                Button::callback("Cancel", format!("wd:no:{}", req.id)),
            ]],
        )
    }

    /// The user's own request, or the answer to give instead.
    async fn own(&self, id: &str, who: Asker) -> anyhow::Result<Result<Request, Answer>> {
        Ok(match kv_json::get::<Request>(&self.store, &req_key(id)).await? {
            Some(req) if req.user_id == who.user_id => Ok(req),
            _ => Err(Answer::read("No such withdrawal.")),
        })
    }

    /// Moves request `id` from `from` to `to` (with `reason`, `day`); the request as it
    /// stands after, and whether this call moved it.
    async fn transition(&self, id: &str, from: State, to: State, reason: Option<&str>, day: Option<&str>) -> anyhow::Result<(Option<Request>, bool)> {
        let mut moved = false;
        let req = kv_json::update(&self.store, &req_key(id), |current: Option<Request>| {
            let mut req = current.filter(|r| r.state == from)?;
            moved = true;
            req.state = to;
            req.reason = reason.map(str::to_string).or(req.reason);
            req.day = day.map(str::to_string).or(req.day);
            Some(req)
        })
        .await?;
        Ok((req, moved))
    }

    /// `wd:ok:<id>`: counts the caps, holds the amount, hands it on (or to an admin).
    async fn confirm(&self, p: &Payments, id: &str, who: Asker) -> anyhow::Result<Answer> {
        let req = match self.own(id, who).await? {
            Ok(req) => req,
            Err(answer) => return Ok(answer),
        };
        let mut req = req;
        if req.state == State::Requested {
            let now = herald_schemas::now_ms();
            if now > req.created_ms + CONFIRM_WITHIN_MS {
                // a confirmation that crashed after its hold and came back late (the
                // pipeline down for longer than the window) must not leave the amount
                // held: give back whatever an earlier delivery took (nothing, normally)
                p.ledger.release(req.user_id, &req.hold(), &format!("withdrawal {id} expired")).await?;
                for day in [caps::day_of(now), caps::day_of(req.created_ms)] {
                    caps::unreserve(&self.store, &caps::key(&day, Some(req.user_id)), id).await?;
                    caps::unreserve(&self.store, &caps::key(&day, None), id).await?;
                }
                let (req, _) = self.transition(id, State::Requested, State::Expired, None, None).await?;
                return Ok(self.standing(&req.unwrap_or(req_fallback(id)), Effect::NotMade));
            }
            // claimed first, by compare-and-set, with the day its caps count in: a Cancel
            // at the same moment either wins before anything is held or loses
            let (claimed, _) = self.transition(id, State::Requested, State::Confirming, None, Some(&caps::day_of(now))).await?;
            req = claimed.unwrap_or(req_fallback(id));
        }
        if req.state != State::Confirming {
            let effect = if matches!(req.state, State::Approved | State::Waiting) { Effect::AlreadyMade } else { Effect::NotMade };
            return Ok(self.standing(&req, effect));
        }
        // the rest repeats safely: a crashed delivery finds the request Confirming
        let r = &self.rules;
        let amount = req.amount();
        let day = req.day.clone().unwrap_or_else(|| caps::day_of(herald_schemas::now_ms()));
        let (user_cap, wallet_cap) = (caps::key(&day, Some(req.user_id)), caps::key(&day, None));
        let refusal = if !caps::reserve(&self.store, &user_cap, id, amount, r.user_daily).await? {
            Some(format!("over your daily limit of {}", usd(r.user_daily)))
        } else if !caps::reserve(&self.store, &wallet_cap, id, amount, r.wallet_daily).await? {
            Some("today's withdrawals have reached the service's daily limit; try tomorrow".to_string())
        } else {
            match p.ledger.hold(req.user_id, amount, &req.hold(), &format!("withdrawal to {}", req.to)).await? {
                Applied::Insufficient(balance) => Some(format!("your balance is {}", usd(balance))),
                Applied::Done(_) | Applied::AlreadyApplied => None,
            }
        };
        if let Some(why) = refusal {
            caps::unreserve(&self.store, &user_cap, id).await?;
            caps::unreserve(&self.store, &wallet_cap, id).await?;
            let (req, _) = self.transition(id, State::Confirming, State::Refused, Some(&why), None).await?;
            return Ok(self.standing(&req.unwrap_or(req_fallback(id)), Effect::NotMade));
        }
        let next = if amount > r.approval_above { State::Waiting } else { State::Approved };
        let (req, moved) = self.transition(id, State::Confirming, next, None, None).await?;
        let req = req.unwrap_or(req_fallback(id));
        kv_json::update(&self.store, &last_address_key(req.user_id), |_: Option<String>| Some(req.to.clone())).await?;
        Ok(self.standing(&req, if moved { Effect::Made } else { Effect::AlreadyMade }))
    }

    /// What a request's state says to its user, with what goes out in that state (the
    /// same ids every time, so saying it again sends nothing twice).
    fn standing(&self, req: &Request, effect: Effect) -> Answer {
        let why = escape_html(req.reason.as_deref().unwrap_or("no reason given"));
        let (text, outputs) = match req.state {
            State::Requested => return Answer { reply: self.confirmation(req), outputs: Vec::new(), effect },
            State::Confirming => (format!("⏳ Withdrawal {} is being confirmed.", req.id), Vec::new()),
            State::Cancelled => ("Withdrawal cancelled; nothing left your balance.".to_string(), Vec::new()),
            State::Expired => ("This confirmation expired; send /withdraw again.".to_string(), Vec::new()),
            State::Refused => (format!("Withdrawal not made: {why}. Nothing left your balance."), Vec::new()),
            State::Waiting => (
                format!("⏳ Withdrawal {} of {} is held and waits for an admin's approval.", req.id, usd(req.amount())),
                self.tell_admins(req),
            ),
            State::Approved => (
                format!("✅ Withdrawal {} of {} approved; it is being sent to <code>{}</code>.", req.id, usd(req.amount()), escape_html(&req.to)),
                vec![self.for_signer(req)],
            ),
            State::Rejected => (format!("Withdrawal {} was rejected: {why}. The amount is back in your balance.", req.id), Vec::new()),
        };
        Answer {
            reply: Reply::plain(text),
            outputs,
            effect,
        }
    }

    /// The approved withdrawal on `herald.withdrawals.approved.<chain>`, message id
    /// `approved:<id>`.
    fn for_signer(&self, req: &Request) -> Output {
        let w = Withdrawal {
            v: 1,
            id: req.id.clone(),
            user_id: req.user_id,
            chain: self.rules.chain.clone(),
            token: format!("{:#x}", self.rules.token.contract),
            to: req.to.clone(),
            amount: req.net.clone(),
            hold: req.hold(),
            approved_ms: req.created_ms,
        };
        Output {
            subject: subjects::withdrawal_approved(&self.rules.chain),
            msg_id: format!("approved:{}", req.id),
            payload: herald_schemas::encode(&w),
        }
    }

    fn tell_admins(&self, req: &Request) -> Vec<Output> {
        let text = format!(
            "💸 Withdrawal {} waits for approval: {} from user {} to <code>{}</code>.\n<code>/admin reject {} REASON</code> to give a reason.",
            req.id,
            usd(req.amount()),
            req.user_id,
            escape_html(&req.to),
            req.id
        );
        let buttons = vec![approval_row(&req.id, "Approve")];
        self.admins
            .iter()
            .map(|a| {
                let content = Content::SendMessage {
                    text: text.clone(),
                    buttons: buttons.clone(),
                    reply_to: None,
                };
                output(&notice(format!("wd.waiting.{}.{a}", req.id), *a, content))
            })
            .collect()
    }

    /// `wd:no:<id>`: a request not yet confirmed is dropped.
    async fn cancel(&self, id: &str, who: Asker) -> anyhow::Result<Answer> {
        if let Err(answer) = self.own(id, who).await? {
            return Ok(answer);
        }
        let (req, moved) = self.transition(id, State::Requested, State::Cancelled, None, None).await?;
        Ok(self.standing(&req.unwrap_or(req_fallback(id)), if moved { Effect::Made } else { Effect::AlreadyMade }))
    }

    /// `/admin withdrawals`: those waiting, oldest first, each with its buttons.
    async fn list(&self) -> anyhow::Result<Answer> {
        let waiting = waiting(&self.store).await?;
        if waiting.is_empty() {
            return Ok(Answer::read("No withdrawal waits for approval."));
        }
        let mut text = format!("<b>Waiting for approval</b> ({})", waiting.len());
        let mut buttons = Vec::new();
        for req in waiting.iter().take(20) {
            text.push_str(&format!(
                "\n• {}: {} from user {} to <code>{}</code>",
                req.id,
                usd(req.amount()),
                req.user_id,
                escape_html(&req.to)
            ));
            buttons.push(approval_row(&req.id, &format!("Approve {}", req.id)));
        }
        Ok(Answer {
            reply: Reply::with_buttons(text, buttons),
            outputs: Vec::new(),
            effect: Effect::NotMade,
        })
    }

    /// An admin approves a waiting withdrawal: it goes to the signer, its user is told.
    async fn approve(&self, id: &str) -> anyhow::Result<Answer> {
        let (req, moved) = self.transition(id, State::Waiting, State::Approved, None, None).await?;
        let Some(req) = req else {
            return Ok(Answer::read(format!("No withdrawal {}.", escape_html(id))));
        };
        if req.state != State::Approved {
            return Ok(Answer::read(format!("Withdrawal {} is {:?}, not waiting.", req.id, req.state)));
        }
        let told = self.standing(&req, Effect::NotMade);
        let mut outputs = told.outputs;
        outputs.push(output(&notice(format!("wd.approved.{}", req.id), req.chat_id, Content::text(told.reply.text))));
        Ok(Answer {
            reply: Reply::plain(format!("Withdrawal {} approved: {} to <code>{}</code>.", req.id, usd(req.amount()), escape_html(&req.to))),
            outputs,
            effect: if moved { Effect::Made } else { Effect::AlreadyMade },
        })
    }

    /// An admin rejects a waiting withdrawal: the hold is released (the user refunded),
    /// the caps given back, the user told why.
    async fn reject(&self, p: &Payments, id: &str, reason: &str) -> anyhow::Result<Answer> {
        // the state first, by compare-and-set: of an approval and a rejection pressed at
        // once by two admins exactly one moves the request, and only a rejected request
        // has its hold released (never one the signer is paying). A crash after it leaves
        // a Rejected request whose retry releases the same hold, once.
        let (req, moved) = self.transition(id, State::Waiting, State::Rejected, Some(reason), None).await?;
        let Some(req) = req else {
            return Ok(Answer::read(format!("No withdrawal {}.", escape_html(id))));
        };
        if req.state != State::Rejected {
            return Ok(Answer::read(format!("Withdrawal {} is {:?}, not waiting.", req.id, req.state)));
        }
        let closed = p.ledger.release(req.user_id, &req.hold(), &format!("withdrawal {id} rejected")).await?;
        if let Some(day) = &req.day {
            caps::unreserve(&self.store, &caps::key(day, Some(req.user_id)), id).await?;
            caps::unreserve(&self.store, &caps::key(day, None), id).await?;
        }
        let effect = match (&closed, moved) {
            (Closed::Done(_), _) | (_, true) => Effect::Made,
            _ => Effect::AlreadyMade,
        };
        let told = self.standing(&req, Effect::NotMade);
        Ok(Answer {
            reply: Reply::plain(format!("Withdrawal {} rejected; {} refunded to user {}.", req.id, usd(req.amount()), req.user_id)),
            outputs: vec![output(&notice(format!("wd.rejected.{}", req.id), req.chat_id, Content::text(told.reply.text)))],
            effect,
        })
    }
}

/// An admin's Approve and Reject buttons for withdrawal `id`.
fn approval_row(id: &str, approve: &str) -> Vec<Button> {
    vec![Button::callback(approve, format!("wd:yes:{id}")), Button::callback("Reject", format!("wd:rej:{id}"))]
}

/// A request that vanished between two reads of it (never expected: requests are not
/// deleted); shown as refused so nothing is sent.
fn req_fallback(id: &str) -> Request {
    Request {
        id: id.to_string(),
        user_id: 0,
        chat_id: 0,
        to: String::new(),
        amount: "0".into(),
        fee: "0".into(),
        net: "0".into(),
        created_ms: 0,
        state: State::Refused,
        reason: Some("the request was not found".into()),
        day: None,
    }
}

/// The requests waiting for an admin's approval in `store` (`herald_withdrawals`),
/// oldest first.
///
/// Errors: KV unreachable.
async fn waiting(store: &async_nats::jetstream::kv::Store) -> anyhow::Result<Vec<Request>> {
    use futures::TryStreamExt;
    let keys: Vec<String> = store.keys().await?.try_collect().await?;
    let mut waiting = Vec::new();
    for key in keys.iter().filter(|k| k.starts_with("req.")) {
        if let Some(req) = kv_json::get::<Request>(store, key).await? {
            if req.state == State::Waiting {
                waiting.push(req);
            }
        }
    }
    waiting.sort_by_key(|r| r.created_ms);
    Ok(waiting)
}

/// How many requests wait for an admin's approval (`/admin stats`).
///
/// Errors: KV unreachable.
pub async fn waiting_count(store: &async_nats::jetstream::kv::Store) -> anyhow::Result<usize> {
    Ok(waiting(store).await?.len())
}
