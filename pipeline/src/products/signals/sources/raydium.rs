//! Recognises Raydium AMM v4 pool creations (`initialize2`) in Solana
//! `transactionNotification` frames (Helius-style `transactionSubscribe`, `jsonParsed`).
//!
//! The new token is the pool mint that is not wrapped SOL; its price in SOL is the
//! initial reserve ratio. Account order of `initialize2` (coin mint = 8, pc mint = 9) is
//! Raydium's `raydium-amm` program layout.

use herald_schemas::{CallEvent, CallSource, Caller, Chain, Link};
use serde_json::Value;

/// Raydium Liquidity Pool V4 program id.
pub const RAYDIUM_AMM_V4: &str = "675kPX9MHTjS2zt1qfr1NYHuzeLXfQM9H24wFSUt1Mp8";
/// Wrapped SOL mint.
pub const WSOL: &str = "So11111111111111111111111111111111111111112";
/// Caller id of calls made by this source.
pub const CALLER_ID: &str = "raydium_amm_v4";

/// The `transactionSubscribe` request Herald sends on connect (Helius enhanced websocket).
pub fn subscribe_request() -> String {
    serde_json::json!({
        "jsonrpc": "2.0", "id": 1, "method": "transactionSubscribe",
        "params": [
            {"failed": false, "accountInclude": [RAYDIUM_AMM_V4]},
            {"commitment": "confirmed", "encoding": "jsonParsed", "transactionDetails": "full", "maxSupportedTransactionVersion": 0}
        ]
    })
    .to_string()
}

/// A new pool, or `None` for frames that are not pool creations (swaps, failed
/// transactions, subscription confirmations).
///
/// Errors: the frame is a `transactionNotification` missing the fields a pool creation
/// needs (the message says which).
pub fn parse_frame(frame: &Value, now_ms: u64) -> Result<Option<CallEvent>, String> {
    if frame.get("method").and_then(Value::as_str) != Some("transactionNotification") {
        return Ok(None);
    }
    let result = frame
        .pointer("/params/result")
        .ok_or("transactionNotification without params.result")?;
    let meta = result.pointer("/transaction/meta").ok_or("transaction without meta")?;
    if !meta.get("err").is_none_or(Value::is_null) {
        return Ok(None);
    }
    let logs: Vec<&str> = meta
        .get("logMessages")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(init_log) = logs.iter().find(|l| l.contains("initialize2: InitializeInstruction2")) else {
        return Ok(None);
    };
    let pc_amount = log_number(init_log, "init_pc_amount").ok_or("initialize2 log without init_pc_amount")?;
    let coin_amount = log_number(init_log, "init_coin_amount").ok_or("initialize2 log without init_coin_amount")?;
    let accounts = initialize_accounts(result).ok_or("no Raydium AMM v4 instruction with pool accounts")?;
    let (coin_mint, pc_mint) = (accounts[8].as_str(), accounts[9].as_str());
    let decimals = |mint: &str| -> Option<i32> {
        meta.get("postTokenBalances")?
            .as_array()?
            .iter()
            .find(|b| b.get("mint").and_then(Value::as_str) == Some(mint))?
            .pointer("/uiTokenAmount/decimals")?
            .as_i64()
            .map(|d| d as i32)
    };
    let coin_ui = coin_amount / 10f64.powi(decimals(coin_mint).unwrap_or(0));
    let pc_ui = pc_amount / 10f64.powi(decimals(pc_mint).unwrap_or(0));
    let (token, price_native) = match (coin_mint == WSOL, pc_mint == WSOL) {
        (false, true) => (coin_mint, (coin_ui > 0.0).then(|| pc_ui / coin_ui)),
        (true, false) => (pc_mint, (pc_ui > 0.0).then(|| coin_ui / pc_ui)),
        _ => (coin_mint, None),
    };
    let signature = result
        .get("signature")
        .and_then(Value::as_str)
        .ok_or("transaction without signature")?;
    Ok(Some(CallEvent {
        v: 1,
        source_event_id: signature.to_string(),
        chain: Chain::from("solana"),
        token: token.to_string(),
        symbol: None,
        name: None,
        price_usd: None,
        price_native,
        fdv_usd: None,
        caller: Caller {
            id: CALLER_ID.into(),
            name: Some("Raydium AMM v4 new pool".into()),
            source: CallSource::Onchain,
        },
        caller_stats: None,
        links: vec![Link {
            label: "Solscan tx".into(),
            url: format!("https://solscan.io/tx/{signature}"),
        }],
        origin_ts_ms: now_ms,
    }))
}

/// `"... init_pc_amount: 19010000000, ..."` -> 19010000000.0
fn log_number(log: &str, field: &str) -> Option<f64> {
    let rest = &log[log.find(&format!("{field}: "))? + field.len() + 2..];
    rest.split([',', ' ', '}']).next()?.parse().ok()
}

/// Accounts of the Raydium instruction, top-level or inner (routers call it via CPI).
fn initialize_accounts(result: &Value) -> Option<Vec<String>> {
    let top = result.pointer("/transaction/transaction/message/instructions")?.as_array()?.iter();
    let inner = result
        .pointer("/transaction/meta/innerInstructions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| i.get("instructions")?.as_array())
        .flatten();
    top.chain(inner).find_map(|ix| {
        if ix.get("programId")?.as_str()? != RAYDIUM_AMM_V4 {
            return None;
        }
        let accounts: Vec<String> = ix
            .get("accounts")?
            .as_array()?
            .iter()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect();
        (accounts.len() >= 10).then_some(accounts)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_numbers() {
        let log = "Program log: initialize2: InitializeInstruction2 { nonce: 254, open_time: 0, init_pc_amount: 1000000000, init_coin_amount: 7900000000 }";
        assert_eq!(log_number(log, "init_pc_amount"), Some(1e9));
        assert_eq!(log_number(log, "init_coin_amount"), Some(7.9e9));
        assert_eq!(log_number(log, "nope"), None);
    }

    #[test]
    fn non_notifications_are_ignored() {
        assert_eq!(parse_frame(&serde_json::json!({"jsonrpc":"2.0","result":7,"id":1}), 0), Ok(None));
        assert!(parse_frame(&serde_json::json!({"method":"transactionNotification","params":{}}), 0).is_err());
    }
}
