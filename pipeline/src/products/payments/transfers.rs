//! BEP-20 `Transfer` logs: decoding JSON-RPC logs into deposits.

use alloy::primitives::{Address, B256, U256};
use alloy::rpc::types::Log;
use alloy::sol_types::SolEvent;

alloy::sol! {
    /// ERC-20 / BEP-20 `Transfer` (topic0 0xddf252ad...).
    event Transfer(address indexed from, address indexed to, uint256 value);
}

/// A token transfer as found on chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenTransfer {
    /// The token contract.
    pub token: Address,
    pub from: Address,
    pub to: Address,
    /// Token base units (no decimals applied: never a float).
    pub value: U256,
    pub block_number: u64,
    pub block_hash: B256,
    pub tx_hash: B256,
    pub log_index: u64,
}

impl TokenTransfer {
    /// `<tx hash>:<log index>`: what makes a transfer unique (the JetStream message id and
    /// the ledger's unique key).
    pub fn id(&self) -> String {
        format!("{:#x}:{}", self.tx_hash, self.log_index)
    }
}

/// Decodes `log` if it is a `Transfer` of a mined block; `Ok(None)` for other events.
///
/// Errors: a `Transfer` log whose topics or data do not decode, or that lacks its block
/// or transaction fields (a pending log).
pub fn decode(log: &Log) -> anyhow::Result<Option<TokenTransfer>> {
    if log.topic0() != Some(&Transfer::SIGNATURE_HASH) {
        return Ok(None);
    }
    let t = Transfer::decode_log(&log.inner).map_err(|e| anyhow::anyhow!("malformed Transfer log: {e}"))?;
    let missing = |what: &str| anyhow::anyhow!("Transfer log without {what} (pending?)");
    Ok(Some(TokenTransfer {
        token: log.address(),
        from: t.from,
        to: t.to,
        value: t.value,
        block_number: log.block_number.ok_or_else(|| missing("blockNumber"))?,
        block_hash: log.block_hash.ok_or_else(|| missing("blockHash"))?,
        tx_hash: log.transaction_hash.ok_or_else(|| missing("transactionHash"))?,
        log_index: log.log_index.ok_or_else(|| missing("logIndex"))?,
    }))
}
