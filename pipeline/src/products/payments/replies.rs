//! `/deposit` and `/balance` replies.

use alloy::primitives::{Address, U256};
use herald_schemas::{LedgerEntry, LedgerKind};

use crate::core::reply::Reply;
use herald_schemas::Photo;
use crate::core::ledger::money::{units, LEDGER_DECIMALS};
use herald_schemas::escape_html;

/// The user's deposit address and the tokens it accepts, with the address as a QR code.
///
/// ```
/// use alloy::primitives::Address;
/// use herald_pipeline::products::payments::replies::deposit;
/// let r = deposit(Address::repeat_byte(1), &[("USDT".into(), Address::repeat_byte(2))]);
/// assert!(r.text.contains("0x0101010101010101010101010101010101010101") && r.text.contains("USDT"));
/// assert_eq!(r.photo, Some(herald_schemas::Photo::QrCode { data: "0x0101010101010101010101010101010101010101".into() }));
/// ```
pub fn deposit(address: Address, tokens: &[(String, Address)]) -> Reply {
    let accepted: Vec<String> = tokens
        .iter()
        .map(|(symbol, contract)| format!("• {} (<code>{contract}</code>)", escape_html(symbol)))
        .collect();
    Reply {
        text: format!(
            "<b>Your deposit address</b> on BNB Smart Chain (BEP-20):\n<code>{address}</code>\n\n\
             Send only these tokens:\n{}\n\nA transfer is announced when seen and credited once final.",
            accepted.join("\n")
        ),
        // the bare checksummed address: every wallet's scanner reads it, whichever token is sent
        photo: Some(Photo::QrCode {
            data: address.to_string(),
        }),
        ..Default::default()
    }
}

/// The balance and the latest entries (newest first).
///
/// ```
/// use alloy::primitives::U256;
/// let r = herald_pipeline::products::payments::replies::balance(U256::ZERO, &[]);
/// assert!(r.text.contains("0.00 USD") && r.text.contains("/deposit"));
/// ```
pub fn balance(balance: U256, history: &[LedgerEntry]) -> Reply {
    let mut text = format!("<b>Balance: {} USD</b>\n", units(balance, LEDGER_DECIMALS));
    if let Some(held) = history.first().map(|e| e.held.parse::<U256>().unwrap_or_default()).filter(|h| !h.is_zero()) {
        text.push_str(&format!("On hold for withdrawals: {} USD\n", units(held, LEDGER_DECIMALS)));
    }
    if history.is_empty() {
        text.push_str("\nNo deposits yet: /deposit shows your address.");
    }
    for e in history {
        let amount = e.amount.parse::<U256>().unwrap_or_default();
        // a settle moves nothing out of the balance: its hold already did
        let sign = match e.kind {
            LedgerKind::Credit | LedgerKind::Release => "+",
            LedgerKind::Debit | LedgerKind::Hold => "−",
            LedgerKind::Settle => "✓ ",
        };
        let when = time::OffsetDateTime::from_unix_timestamp((e.ts_ms / 1000) as i64)
            .map(|t| format!("{}-{:02}-{:02}", t.year(), t.month() as u8, t.day()))
            .unwrap_or_default();
        text.push_str(&format!(
            "\n{when} {sign}{} USD · {}",
            units(amount, LEDGER_DECIMALS),
            escape_html(&e.note)
        ));
    }
    Reply::plain(text)
}
