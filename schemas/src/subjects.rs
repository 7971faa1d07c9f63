//! Every subject, stream, consumer and KV bucket name in one place.
//!
//! The stream definitions in `nats/streams/*.json` use the same names; a test in the
//! pipeline crate checks the two agree.

/// Stream of canonical call events from every source.
pub const CALLS_STREAM: &str = "CALLS";
/// Stream of deduplicated signals (a token with its newly seen callers).
pub const SIGNALS_STREAM: &str = "SIGNALS";
/// Stream of messages for Telegram (notifications and command replies).
pub const OUTBOUND_STREAM: &str = "OUTBOUND";
/// Stream of raw inbound Telegram updates, replayable.
pub const UPDATES_STREAM: &str = "UPDATES";
/// Stream of price updates.
pub const PRICES_STREAM: &str = "PRICES";
/// Stream of calls users were notified about (tracked calls).
pub const TRACKED_STREAM: &str = "TRACKED";
/// Stream of deposits seen, final or orphaned on chain.
pub const DEPOSITS_STREAM: &str = "DEPOSITS";
/// Stream of users' ledgers, one subject per user.
pub const LEDGER_STREAM: &str = "LEDGER";
/// Stream of updates the router handed to a product (`herald.cmd.<product>.<id>`).
pub const COMMANDS_STREAM: &str = "COMMANDS";
/// Random chat: delivery reports of relayed messages (`herald.chat.>`).
pub const CHAT_STREAM: &str = "CHAT";
/// Lottery: each round's audit trail (`herald.lottery.round.<round>`).
pub const LOTTERY_STREAM: &str = "LOTTERY";
/// Trivia's working traffic, kept a week: answers, board changes, poll reports and
/// explanation requests (`herald.trivia.{answer,board,poll,explain}.>`).
pub const TRIVIA_STREAM: &str = "TRIVIA";
/// Trivia's record, kept for good: scored results and game starts and ends
/// (`herald.trivia.{result,game}.>`), what the boards and stats are rebuilt from.
pub const TRIVIA_RESULTS_STREAM: &str = "TRIVIA_RESULTS";
/// Stream of dead-lettered messages, each with its error in headers.
pub const DLQ_STREAM: &str = "DLQ";

/// KV bucket of the core user record [`crate::User`], key = user id.
pub const USERS_BUCKET: &str = "herald_users";
/// KV bucket of [`crate::Access`] (paid access), key = user id: written by the product
/// that sells access, read by those that gate on it.
pub const ACCESS_BUCKET: &str = "herald_access";
/// KV bucket of sessions: key = user id, value = the product whose session the user is
/// in (the router hands it the user's plain messages).
pub const SESSIONS_BUCKET: &str = "herald_sessions";
/// KV bucket of signals' [`crate::SignalsPrefs`], key = user id.
pub const SIGNALS_USERS_BUCKET: &str = "herald_signals_users";
/// KV bucket of [`crate::ChannelStats`], key = caller id (subject-safe, see [`kv_key`]).
pub const CHANNELS_BUCKET: &str = "herald_channels";
/// KV bucket of the chain watcher's progress (key `cursor.<chain>`: the block to resume at).
pub const WATCHER_BUCKET: &str = "herald_watcher";
/// KV bucket of deposit-address assignments (`next`, `user.<id>`, `index.<i>`).
pub const WALLET_BUCKET: &str = "herald_wallet";
/// KV bucket of ledger references already applied (the ledger's unique key).
pub const CREDITS_BUCKET: &str = "herald_ledger_refs";
/// KV bucket of coupon codes (key: the code).
pub const COUPONS_BUCKET: &str = "herald_coupons";
/// The signer's journal (money): per withdrawal, its nonce and every transaction signed
/// for it, written before the broadcast.
pub const SIGNER_BUCKET: &str = "herald_signer";
/// KV bucket of withdrawal requests (money): `req.<id>` (a request and where it
/// stands), `day.<yyyy-mm-dd>.user.<id>` and `day.<yyyy-mm-dd>.wallet` (what the daily
/// caps have counted).
pub const WITHDRAWALS_BUCKET: &str = "herald_withdrawals";
/// Payment gateways' verified statuses: `herald.gateway.>` (money).
pub const GATEWAY_STREAM: &str = "GATEWAY";
/// KV bucket of gateway payments (money): `inv.<order id>` (an invoice made),
/// `pay.<gateway>.<payment id>` (the furthest status handled).
pub const GATEWAY_BUCKET: &str = "herald_gateway";
/// Withdrawals approved and their outcomes: `herald.withdrawals.>` (money).
pub const WITHDRAWALS_STREAM: &str = "WITHDRAWALS";
/// KV bucket of the lottery's state: `current` (the open round), `seed.<round>` (a
/// server seed until its reveal), `buy.<update id>` (a purchase in progress), `paused`,
/// `config`.
pub const LOTTERY_BUCKET: &str = "herald_lottery";
/// Object store of the lottery's draw bundles (`round-<round>.json`).
pub const LOTTERY_BUNDLES: &str = "herald_lottery_bundles";
/// Trivia games in play or just finished, by game id (a day is kept).
pub const TRIVIA_GAMES_BUCKET: &str = "herald_trivia_games";
/// Trivia quiz polls: poll id -> `<game>:<question>` (a day is kept).
pub const TRIVIA_POLLS_BUCKET: &str = "herald_trivia_polls";
/// KV bucket of delivered idempotency keys (the bot's exactly-once guard).
pub const DELIVERED_BUCKET: &str = "herald_delivered";

/// Header carrying the dead-letter reason.
pub const HEADER_ERROR: &str = "Herald-Error";
/// Header naming the stage that dead-lettered a message.
pub const HEADER_STAGE: &str = "Herald-Stage";
/// Header with the subject the dead-lettered message was consumed from.
pub const HEADER_ORIGINAL_SUBJECT: &str = "Herald-Original-Subject";
/// Header with the stream sequence of the dead-lettered message.
pub const HEADER_ORIGINAL_SEQUENCE: &str = "Herald-Original-Sequence";

/// `herald.calls.<chain>.<source>`: a [`crate::CallEvent`].
pub fn call(chain: &str, source: &str) -> String {
    format!("herald.calls.{}.{}", token(chain), token(source))
}

/// `herald.signals.<chain>`: a [`crate::Signal`].
pub fn signal(chain: &str) -> String {
    format!("herald.signals.{}", token(chain))
}

/// `herald.prices.<chain>`: a [`crate::PriceUpdate`].
pub fn price(chain: &str) -> String {
    format!("herald.prices.{}", token(chain))
}

/// `herald.tracked.<chain>`: a [`crate::TrackedCalls`].
pub fn tracked(chain: &str) -> String {
    format!("herald.tracked.{}", token(chain))
}

/// `herald.deposits.<stage>.<chain>`: a [`crate::Deposit`].
pub fn deposit(stage: crate::DepositStage, chain: &str) -> String {
    format!("herald.deposits.{}.{}", stage.as_str(), token(chain))
}

/// `herald.gateway.<gateway>.<user>`: a [`crate::GatewayPayment`] (one user's in order).
pub fn gateway_payment(gateway: &str, user_id: i64) -> String {
    format!("herald.gateway.{}.{user_id}", token(gateway))
}

/// `herald.withdrawals.approved.<chain>`: a [`crate::Withdrawal`] for the signer.
pub fn withdrawal_approved(chain: &str) -> String {
    format!("herald.withdrawals.approved.{}", token(chain))
}

/// `herald.withdrawals.<stage>.<chain>`: a [`crate::WithdrawalOutcome`] from the signer.
pub fn withdrawal_outcome(stage: crate::WithdrawalStage, chain: &str) -> String {
    format!("herald.withdrawals.{}.{}", stage.as_str(), token(chain))
}

/// `herald.ledger.<user_id>`: a [`crate::LedgerEntry`]; the subject is the user's ledger.
pub fn ledger(user_id: i64) -> String {
    format!("herald.ledger.{user_id}")
}

/// `herald.out.notify.<chat_id>`: a broadcast [`crate::OutboundMessage`].
pub fn notify(chat_id: i64) -> String {
    format!("herald.out.notify.{chat_id}")
}

/// `herald.out.reply.<chat_id>`: a reply to a user's own command (sent first).
pub fn reply(chat_id: i64) -> String {
    format!("herald.out.reply.{chat_id}")
}

/// Filter for every broadcast notification.
pub const NOTIFY_ALL: &str = "herald.out.notify.>";
/// Filter for every command reply.
pub const REPLY_ALL: &str = "herald.out.reply.>";

/// `herald.updates.<kind>.<sender>`: a raw Telegram `Update` (kind = `message`,
/// `channel_post`, ...; sender = the user, or the chat for channel posts, see
/// [`crate::telegram::update_sender`]), so one sender's updates share a subject and the
/// router keeps them in order. `herald.updates.<kind>` when there is no sender.
pub fn update(kind: &str, sender: Option<i64>) -> String {
    match sender {
        Some(id) => format!("herald.updates.{}.{id}", token(kind)),
        None => format!("herald.updates.{}", token(kind)),
    }
}

/// `herald.cmd.<product>.<id>`: a [`crate::RoutedUpdate`] for `product`; `id` is the
/// user (or the chat, for channel posts), so one user's updates share a subject.
pub fn routed(product: &str, id: i64) -> String {
    format!("herald.cmd.{}.{id}", token(product))
}

/// Filter for every update routed to `product`.
pub fn routed_all(product: &str) -> String {
    format!("herald.cmd.{}.>", token(product))
}

/// `herald.chat.delivery.<sender>`: [`crate::DeliveryReport`]s of what the random chat
/// relayed for `sender` (or told them), so one sender's reports stay in order.
pub fn chat_delivery(sender: i64) -> String {
    format!("herald.chat.delivery.{sender}")
}

/// `herald.dlq.<stage>`: the original payload, error in [`HEADER_ERROR`].
pub fn dead_letter(stage: &str) -> String {
    format!("herald.dlq.{}", token(stage))
}

/// Makes a string safe as one subject token: `.`, `*`, `>` and whitespace become `_`;
/// one longer than [`MAX_TOKEN`] bytes becomes a prefix and a SHA-256
/// (see [`bounded`]), so no input can exceed nats-server's control-line limit.
pub fn token(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| {
            if c == '.' || c == '*' || c == '>' || c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    if t.is_empty() {
        "_".into()
    } else {
        bounded(t, s, MAX_TOKEN)
    }
}

/// Longest subject token [`token`] makes (bytes).
pub const MAX_TOKEN: usize = 128;
/// Longest KV key [`kv_key`] makes (bytes).
pub const MAX_KV_KEY: usize = 200;

/// Makes a string a valid KV key (`[-/_=.a-zA-Z0-9]+`), replacing other characters by
/// `_`; a key longer than [`MAX_KV_KEY`] becomes a prefix, `=`, and the SHA-256 of the
/// whole input in hex ([`MAX_KV_KEY`] bytes), so a key built from outside input
/// stays bounded, and distinct long inputs keep distinct keys (short ones are
/// sanitized as before: `a:b` and `a@b` share `a_b`, so ids from outside pass
/// [`crate::checks`] first).
///
/// ```
/// use herald_schemas::subjects::{kv_key, MAX_KV_KEY};
/// assert_eq!(kv_key("-100:x@y"), "-100_x_y");
/// assert!(kv_key(&"x".repeat(10_000)).len() <= MAX_KV_KEY);
/// assert_ne!(kv_key(&"x".repeat(10_000)), kv_key(&"x".repeat(10_001)));
/// ```
pub fn kv_key(s: &str) -> String {
    let key: String = s
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "-/_=.".contains(c) { c } else { '_' })
        .collect();
    bounded(key, s, MAX_KV_KEY)
}

/// `safe` when at most `max` bytes; otherwise as much of it as fits (cut at a char
/// boundary), `=` and the SHA-256 of `original` in hex (65 bytes), `max` in all.
fn bounded(safe: String, original: &str, max: usize) -> String {
    if safe.len() <= max {
        return safe;
    }
    use sha2::Digest;
    let mut cut = max - 65;
    while !safe.is_char_boundary(cut) {
        cut -= 1;
    }
    let digest = sha2::Sha256::digest(original.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}={hex}", &safe[..cut])
}

/// `herald.lottery.round.<round>`: a [`crate::LotteryEntry`] of the round's audit trail.
pub fn lottery_round(round: u64) -> String {
    format!("herald.lottery.round.{round}")
}

/// `herald.trivia.<kind>.<key>`: a trivia event; `kind` is `answer`, `result`,
/// `game`, `poll` (keyed by game) or `board` (keyed by player), so one game's events
/// share a subject and stay in order.
pub fn trivia(kind: &str, key: &str) -> String {
    format!("herald.trivia.{}.{}", token(kind), token(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Whatever the input, a token stays one bounded subject level and a KV key stays
        /// in the bucket's grammar; distinct long inputs keep distinct keys.
        #[test]
        fn tokens_and_keys_keep_their_grammar(s in "\\PC{0,300}", t in "\\PC{190,300}") {
            let tok = token(&s);
            proptest::prop_assert!(!tok.is_empty() && tok.len() <= MAX_TOKEN);
            proptest::prop_assert!(!tok.contains(['.', '*', '>']) && !tok.chars().any(char::is_whitespace));
            let key = kv_key(&s);
            proptest::prop_assert!(key.len() <= MAX_KV_KEY);
            proptest::prop_assert!(key.chars().all(|c| c.is_ascii_alphanumeric() || "-/_=.".contains(c)));
            // long keys are hashed, so they stay distinct (short ones are sanitized as
            // they always were: `a:b` and `a@b` share `a_b`)
            if s != t && s.chars().count() > MAX_KV_KEY && t.chars().count() > MAX_KV_KEY {
                proptest::prop_assert_ne!(kv_key(&s), kv_key(&t));
            }
        }

        /// `checks::subject_token` accepts exactly `[A-Za-z0-9_-]{1,64}`.
        #[test]
        fn the_subject_token_grammar_is_exact(s in "[A-Za-z0-9_.*> -]{0,70}") {
            let ok = !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            proptest::prop_assert_eq!(crate::checks::subject_token(&s).is_ok(), ok);
        }
    }

    #[test]
    fn subject_tokens_cannot_escape_their_level() {
        assert_eq!(call("sol.ana", "a b"), "herald.calls.sol_ana.a_b");
        assert_eq!(dead_letter(""), "herald.dlq._");
        assert_eq!(kv_key("-100:x@y"), "-100_x_y");
        let long = token(&"é".repeat(5000));
        assert!(long.len() <= MAX_TOKEN && !long.contains('.'));
    }
}
