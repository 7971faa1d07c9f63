//! `/deposit`, `/balance` and `/subscribe`, answered with the wallet and the ledger.

use alloy::primitives::U256;
use herald_schemas::{Access, Button};
use teloxide::utils::command::BotCommands;

use super::replies as wallet;
use crate::core::reply::{date, Reply};
use crate::core::ledger::money::{units, LEDGER_DECIMALS};
use crate::core::ledger::Applied;
use super::subscriptions::{extend, Tier};
use super::Payments;
use herald_runtime::Effect;
use herald_schemas::escape_html;

/// The commands the router hands to payments.
#[derive(BotCommands, Debug, Clone, PartialEq)]
#[command(rename_rule = "lowercase")]
pub enum PaymentsCommand {
    #[command(description = "your BEP-20 deposit address and the tokens it takes")]
    Deposit,
    #[command(description = "your balance and its history")]
    Balance,
    // `/subscribe [tier [coupon]]`: the tiers, or buy one.
    #[command(description = "subscription tiers, paid from your balance")]
    Subscribe(String),
    // `/withdraw [AMOUNT ADDRESS]`: the rules and buttons, or a request to confirm.
    #[command(description = "send your balance to your own wallet")]
    Withdraw(String),
}

impl PaymentsCommand {
    /// Parses a routed command's text.
    ///
    /// ```
    /// use herald_pipeline::products::payments::commands::PaymentsCommand;
    /// assert_eq!(PaymentsCommand::from_text("/subscribe weekly HALF"), Some(PaymentsCommand::Subscribe("weekly HALF".into())));
    /// assert_eq!(PaymentsCommand::from_text("/filters"), None);
    /// ```
    pub fn from_text(text: &str) -> Option<Self> {
        <Self as BotCommands>::parse(text, "").ok()
    }
}

/// `/help`'s note on coupons.
pub const HELP: &str = "<code>/subscribe weekly CODE</code> — buy with a coupon";

/// Page of `/subscribe`: the balance and a button per tier (`sub:<tier>`).
pub fn offer(tiers: &[Tier], balance: U256, paid_until_ms: Option<u64>, gateway: bool) -> Reply {
    let mut text = format!(
        "<b>Subscriptions</b>\n{}\nBalance: {} USD\n",
        status(paid_until_ms),
        units(balance, LEDGER_DECIMALS)
    );
    for t in tiers {
        let length = t.days.map(days).unwrap_or_else(|| "for good".into());
        text.push_str(&format!("\n• {}: {} USD, {length}", t.name, units(t.price, LEDGER_DECIMALS)));
    }
    text.push_str("\n\nPaid from your balance (/deposit to top it up).");
    let mut buttons = vec![tiers
        .iter()
        .map(|t| Button {
            text: t.name.clone(),
            callback_data: format!("sub:{}", t.name),
            url: None,
        })
        .collect()];
    if gateway {
        text.push_str(" Or pay a tier's price by card or crypto through NOWPayments (💳), then tap the tier.");
        let offers: Vec<(String, String)> = tiers.iter().map(|t| (format!("💳 {}", t.name), format!("sub:{}", t.name))).collect();
        buttons.push(super::nowpayments::buttons(&offers));
    }
    Reply::with_buttons(text, buttons)
}

/// `1 day`, `7 days`.
pub fn days(n: u64) -> String {
    match n {
        1 => "1 day".into(),
        n => format!("{n} days"),
    }
}

fn status(paid_until_ms: Option<u64>) -> String {
    match paid_until_ms {
        Some(u64::MAX) => "Lifetime subscription.".into(),
        Some(t) if t > herald_schemas::now_ms() => format!("Subscribed until {}.", date(t)),
        _ => "No active subscription.".into(),
    }
}

/// A tier from a `sub:<tier>` button.
pub fn parse_callback(data: &str) -> Option<PaymentsCommand> {
    Some(PaymentsCommand::Subscribe(data.strip_prefix("sub:")?.to_string()))
}

/// Answers a payments command for a known user; a settings change (a subscription
/// bought) to store after the reply is out; and whether the command's effect (an
/// address assigned, a debit) was made now, found made, or not made.
///
/// A purchase is a debit with reference `sub:<update id>`: a redelivered update never
/// charges twice, a coupon use is reserved under the same reference (once per
/// purchase), and the access's `last_grant` makes it extend the subscription once.
/// Returns the reply, the new access to store and the effect.
pub async fn answer(p: &Payments, cmd: PaymentsCommand, user: &Access, update_id: i64) -> anyhow::Result<(Reply, Option<Access>, Effect)> {
    let user_id = user.user_id;
    Ok(match cmd {
        PaymentsCommand::Deposit => {
            let assigned = super::addresses::assign(&p.addresses, &p.wallet, user_id).await?;
            let effect = if assigned.fresh { Effect::Made } else { Effect::AlreadyMade };
            let mut reply = wallet::deposit(assigned.address, &p.tokens);
            if p.gateway.is_some() {
                reply.text.push_str("\n\nOr pay by card or another coin through NOWPayments:");
                let offers = super::nowpayments::TOP_UPS.map(|usd| (format!("💳 {usd} USD"), usd.to_string()));
                reply.buttons.push(super::nowpayments::buttons(&offers));
            }
            (reply, None, effect)
        }
        PaymentsCommand::Withdraw(_) => unreachable!("the inbox hands /withdraw to withdraw::Withdrawals"),
        PaymentsCommand::Balance => {
            let balance = p.ledger.balance(user_id).await?.0;
            (wallet::balance(balance, &p.ledger.history(user_id, 10).await?), None, Effect::NotMade)
        }
        PaymentsCommand::Subscribe(args) if args.trim().is_empty() => {
            (offer(&p.tiers, p.ledger.balance(user_id).await?.0, user.paid_until_ms, p.gateway.is_some()), None, Effect::NotMade)
        }
        PaymentsCommand::Subscribe(args) => {
            let mut words = args.split_whitespace();
            let name = words.next().unwrap_or_default().to_ascii_lowercase();
            let Some(tier) = p.tiers.iter().find(|t| t.name == name) else {
                return Ok((offer(&p.tiers, p.ledger.balance(user_id).await?.0, user.paid_until_ms, p.gateway.is_some()), None, Effect::NotMade));
            };
            let reference = format!("sub:{update_id}");
            if user.last_grant.as_deref() == Some(reference.as_str()) {
                // a redelivered purchase that went through: say so again, touch nothing
                let text = format!("✅ {} subscription bought. {}", tier.name, status(user.paid_until_ms));
                return Ok((Reply::plain(text), None, Effect::AlreadyMade));
            }
            // a coupon: one use taken now, given back if the purchase does not happen
            let coupon = match words.next() {
                None => None,
                Some(code) => {
                    let found = match super::coupons::key(code) {
                        Some(code) => super::coupons::reserve(&p.coupons, &code, &reference, herald_schemas::now_ms()).await?,
                        None => Err("no such coupon"),
                    };
                    match found {
                        Ok(c) => Some(c),
                        Err(why) => return Ok((Reply::plain(format!("Coupon {}: {why}.", escape_html(code))), None, Effect::NotMade)),
                    }
                }
            };
            let price = coupon.as_ref().map_or(tier.price, |c| c.price_after(tier.price));
            let note = match &coupon {
                Some(c) => format!("{} subscription, coupon {}", tier.name, c.code),
                None => format!("{} subscription", tier.name),
            };
            let (balance, effect) = match p.ledger.debit(user_id, price, &reference, &note).await? {
                Applied::Insufficient(balance) => {
                    if let Some(c) = &coupon {
                        super::coupons::release(&p.coupons, &c.code, &reference).await?;
                    }
                    let text = format!(
                        "The {} subscription costs {} USD; your balance is {} USD. /deposit to top it up.",
                        tier.name,
                        units(price, LEDGER_DECIMALS),
                        units(balance, LEDGER_DECIMALS)
                    );
                    return Ok((Reply::plain(text), None, Effect::NotMade));
                }
                Applied::Done(balance) => (balance, Effect::Made),
                Applied::AlreadyApplied => (p.ledger.balance(user_id).await?.0, Effect::AlreadyMade),
            };
            let mut new = user.clone();
            if user.last_grant.as_deref() != Some(reference.as_str()) {
                new.paid_until_ms = Some(extend(user.paid_until_ms, herald_schemas::now_ms(), tier));
                new.last_grant = Some(reference);
                new.updated_at_ms = herald_schemas::now_ms();
            }
            let text = format!(
                "✅ {} subscription bought. {} Balance: {} USD.",
                tier.name,
                status(new.paid_until_ms),
                units(balance, LEDGER_DECIMALS)
            );
            let changed = (new != *user).then_some(new);
            (Reply::plain(text), changed, effect)
        }
    })
}

/// A NOWPayments button pressed (`np:<usd>`: a top-up of one of
/// [`super::nowpayments::TOP_UPS`]; `np:sub:<tier>`: a tier's price): the invoice's
/// page as a link, made once per press (order id `np-<user>-<update id>`).
///
/// Errors: NATS failed.
pub async fn invoice(p: &Payments, data: &str, who: super::withdraw::Asker) -> anyhow::Result<(Reply, Effect)> {
    let Some(gateway) = &p.gateway else {
        return Ok((Reply::plain("NOWPayments is not offered here."), Effect::NotMade));
    };
    let one = U256::from(10).pow(U256::from(LEDGER_DECIMALS));
    let (price, what) = match data.strip_prefix("sub:") {
        Some(tier) => match p.tiers.iter().find(|t| t.name == tier) {
            Some(t) => (t.price, format!("Top-up for the {} subscription", t.name)),
            None => return Ok((Reply::plain("No such tier."), Effect::NotMade)),
        },
        None => match data.parse::<u64>().ok().filter(|usd| super::nowpayments::TOP_UPS.contains(usd)) {
            Some(usd) => (U256::from(usd) * one, "Balance top-up".to_string()),
            None => return Ok((Reply::plain("That payment is not offered."), Effect::NotMade)),
        },
    };
    gateway.invoice(price, &format!("np-{}-{}", who.user_id, who.update_id), &what).await
}
