//! The chain, as the signer sees it: the hot wallet's funds, gas prices, signing a
//! BEP-20 `transfer` with alloy (legacy transactions at the node's gas price, as BSC
//! prices gas), broadcasting a signed transaction, receipts and the head.

use alloy::consensus::{SignableTransaction, TxEnvelope, TxLegacy};
use alloy::eips::eip2718::Encodable2718;
use alloy::network::TxSignerSync;
use alloy::primitives::{Address, TxKind, B256, U256};
use alloy::providers::{Provider, RootProvider};
use alloy::rpc::types::{TransactionInput, TransactionRequest};
use alloy::sol_types::SolCall;
use anyhow::Context;

use crate::key::HotKey;

alloy::sol! {
    function balanceOf(address owner) returns (uint256);
    function transfer(address to, uint256 amount) returns (bool);
}

/// One signed transaction: its hash and its raw EIP-2718 bytes, hex.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignedTx {
    pub hash: String,
    pub raw: String,
    /// Wei per gas.
    pub gas_price: u128,
    pub gas_limit: u64,
    pub signed_ms: u64,
}

/// A transfer to sign: `amount` base units of `token` to `to`, as transaction `nonce`.
#[derive(Debug, Clone, Copy)]
pub struct Transfer {
    pub token: Address,
    pub to: Address,
    pub amount: U256,
    pub nonce: u64,
}

/// Signs `t` at `gas_price` with `gas_limit` for chain `chain_id`: the same inputs give
/// the same transaction (legacy signatures are deterministic, RFC 6979).
///
/// Errors: the signer refused (never the key).
pub fn sign(key: &HotKey, chain_id: u64, t: Transfer, gas_price: u128, gas_limit: u64) -> anyhow::Result<SignedTx> {
    let mut tx = TxLegacy {
        chain_id: Some(chain_id),
        nonce: t.nonce,
        gas_price,
        gas_limit,
        to: TxKind::Call(t.token),
        value: U256::ZERO,
        input: transferCall {
            to: t.to,
            amount: t.amount,
        }
        .abi_encode()
        .into(),
    };
    let signature = key.signer().sign_transaction_sync(&mut tx).context("signing")?;
    let signed = tx.into_signed(signature);
    let hash = *signed.hash();
    let raw = TxEnvelope::from(signed).encoded_2718();
    Ok(SignedTx {
        hash: hash.to_string(),
        raw: alloy::hex::encode_prefixed(raw),
        gas_price,
        gas_limit,
        signed_ms: herald_schemas::now_ms(),
    })
}

/// A mined transaction: its block and whether it succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mined {
    pub block: u64,
    pub success: bool,
}

/// The node the signer talks to, for the hot wallet `hot`.
#[derive(Clone)]
pub struct Chain {
    provider: RootProvider,
    pub chain_id: u64,
    pub hot: Address,
}

impl Chain {
    /// Connects to `rpc_url` (http or https) and reads the chain id.
    ///
    /// Errors: not a URL, or the node did not answer.
    pub async fn connect(rpc_url: &str, hot: Address) -> anyhow::Result<Self> {
        // alloy's reqwest has TLS without a built-in provider: install ring's
        let _ = rustls::crypto::ring::default_provider().install_default();
        let url = rpc_url.parse().map_err(|e| anyhow::anyhow!("RPC URL {rpc_url:?}: {e}"))?;
        let provider = RootProvider::new_http(url);
        let chain_id = provider.get_chain_id().await.context("eth_chainId")?;
        Ok(Chain { provider, chain_id, hot })
    }

    /// The hot wallet's balance of `token` (base units) and of the native coin (wei).
    ///
    /// Errors: an RPC request failed.
    pub async fn funds(&self, token: Address) -> anyhow::Result<(U256, U256)> {
        let call = TransactionRequest::default()
            .to(token)
            .input(TransactionInput::new(balanceOfCall { owner: self.hot }.abi_encode().into()));
        let answer = self.provider.call(call).await.context("balanceOf")?;
        let tokens = balanceOfCall::abi_decode_returns(&answer).context("balanceOf answer")?;
        let native = self.provider.get_balance(self.hot).await.context("eth_getBalance")?;
        Ok((tokens, native))
    }

    /// The node's gas price (wei).
    ///
    /// Errors: the request failed.
    pub async fn gas_price(&self) -> anyhow::Result<u128> {
        self.provider.get_gas_price().await.context("eth_gasPrice")
    }

    /// Gas for `t`, with a fifth more as margin.
    ///
    /// Errors: the node refused the estimate (the transfer would revert).
    pub async fn gas_for(&self, t: Transfer) -> anyhow::Result<u64> {
        let tx = TransactionRequest::default()
            .from(self.hot)
            .to(t.token)
            .input(TransactionInput::new(
                transferCall {
                    to: t.to,
                    amount: t.amount,
                }
                .abi_encode()
                .into(),
            ));
        let gas = self.provider.estimate_gas(tx).await.context("eth_estimateGas")?;
        Ok(gas + gas / 5)
    }

    /// How many of the hot wallet's transactions are mined (the next nonce the chain
    /// expects).
    ///
    /// Errors: the request failed.
    pub async fn mined_nonce(&self) -> anyhow::Result<u64> {
        self.provider
            .get_transaction_count(self.hot)
            .await
            .context("eth_getTransactionCount")
    }

    /// Sends a signed transaction. A node that has it already, or has mined its nonce
    /// (this one or a replacement), is not an error: the receipts tell which.
    ///
    /// Errors: the node refused it for another reason.
    pub async fn broadcast(&self, tx: &SignedTx) -> anyhow::Result<()> {
        let raw = alloy::hex::decode(&tx.raw).context("journal raw transaction")?;
        match self.provider.send_raw_transaction(&raw).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let text = e.to_string().to_ascii_lowercase();
                let harmless = [
                    "already known",
                    "known transaction",
                    "nonce too low",
                    "replacement transaction underpriced",
                ];
                if harmless.iter().any(|h| text.contains(h)) {
                    Ok(())
                } else {
                    Err(anyhow::anyhow!("eth_sendRawTransaction {}: {e}", tx.hash))
                }
            }
        }
    }

    /// Where `hash` was mined, if it was.
    ///
    /// Errors: the request failed, or `hash` is not a hash.
    pub async fn mined(&self, hash: &str) -> anyhow::Result<Option<Mined>> {
        let hash: B256 = hash.parse().context("transaction hash")?;
        let receipt = self
            .provider
            .get_transaction_receipt(hash)
            .await
            .context("eth_getTransactionReceipt")?;
        Ok(receipt.and_then(|r| {
            Some(Mined {
                block: r.block_number?,
                success: r.status(),
            })
        }))
    }

    /// The head's number.
    ///
    /// Errors: the request failed.
    pub async fn head(&self) -> anyhow::Result<u64> {
        self.provider.get_block_number().await.context("eth_blockNumber")
    }
}
