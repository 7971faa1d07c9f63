//! Moving deposits to the treasury (`pipeline payments sweep`): with `pipeline payments
//! xpub`, the only code that holds the mnemonic.
//!
//! For each deposit address holding an accepted token: top up its gas (BNB) from the
//! gas wallet when it has too little for one transfer, then send the token's whole
//! balance to the treasury, signed with the address's own key (alloy's mnemonic signer,
//! `m/44'/60'/0'/0/i`, the path the xpub derives). Legacy transactions at the node's gas
//! price, so the top-up is exactly gas limit x price (BSC prices gas that way).
//!
//! The gas wallet is `m/44'/60'/1'/0/0` of the same mnemonic: another BIP-44 account, so
//! it is never a deposit address. Fund it with BNB (`pipeline payments gas-address`).
//!
//! Crediting is untouched: the watcher looks only at transfers *to* deposit addresses.

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::rpc::types::{TransactionInput, TransactionRequest};
use alloy::signers::local::{coins_bip39::English, MnemonicBuilder, PrivateKeySigner};
use alloy::sol_types::SolCall;
use anyhow::Context;

use super::credit::DepositToken;
use super::watcher::provider;

alloy::sol! {
    function balanceOf(address owner) returns (uint256);
    function transfer(address to, uint256 amount) returns (bool);
}

/// The gas wallet's path.
pub const GAS_WALLET_PATH: &str = "m/44'/60'/1'/0/0";

/// What to sweep where.
#[derive(Debug, Clone)]
pub struct SweepConfig {
    /// JSON-RPC endpoint (http or https).
    pub rpc_url: String,
    /// Where the tokens go.
    pub treasury: Address,
    /// Accepted tokens by contract.
    pub tokens: Vec<(Address, DepositToken)>,
    /// List what would move, send nothing.
    pub dry_run: bool,
}

/// One token balance moved (or, in a dry run, to move) from a deposit address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swept {
    pub index: u32,
    pub address: Address,
    pub token: Address,
    /// Token base units.
    pub amount: U256,
    /// The transfer's transaction; `None` in a dry run.
    pub tx: Option<B256>,
}

fn signer(mnemonic: &str, path: &str) -> anyhow::Result<PrivateKeySigner> {
    MnemonicBuilder::<English>::default()
        .phrase(mnemonic.trim())
        .derivation_path(path)?
        .build()
        .map_err(|_| anyhow::anyhow!("the mnemonic is not a valid English BIP-39 phrase"))
}

/// The gas wallet's address for `mnemonic`.
///
/// Errors: not a valid mnemonic (the error never contains it).
pub fn gas_address(mnemonic: &str) -> anyhow::Result<Address> {
    Ok(signer(mnemonic, GAS_WALLET_PATH)?.address())
}

/// Sweeps every deposit address assigned in the `herald_wallet` bucket (`wallet_kv`);
/// returns how many addresses were looked at, and what moved.
///
/// Errors: as [`sweep`], or the bucket could not be read.
pub async fn sweep_assigned(
    wallet_kv: &async_nats::jetstream::kv::Store,
    mnemonic: &str,
    cfg: &SweepConfig,
) -> anyhow::Result<(usize, Vec<Swept>)> {
    let mut indexes: Vec<u32> = super::addresses::all(wallet_kv).await?.into_iter().map(|(i, _)| i).collect();
    indexes.sort_unstable();
    Ok((indexes.len(), sweep(mnemonic, &indexes, cfg).await?))
}

/// Sweeps the deposit addresses at `indexes`.
///
/// Errors: not a valid mnemonic, an RPC request failed (named), or a transaction
/// reverted. Transfers done before the error stand; running it again picks up the rest.
pub async fn sweep(mnemonic: &str, indexes: &[u32], cfg: &SweepConfig) -> anyhow::Result<Vec<Swept>> {
    let chain = provider(&cfg.rpc_url)?;
    let signing = |key: PrivateKeySigner| -> anyhow::Result<_> {
        Ok(ProviderBuilder::new()
            .wallet(EthereumWallet::from(key))
            .connect_http(cfg.rpc_url.parse()?))
    };
    let gas_wallet = signing(signer(mnemonic, GAS_WALLET_PATH)?)?;
    let mut swept = Vec::new();
    for &index in indexes {
        let key = signer(mnemonic, &format!("m/44'/60'/0'/0/{index}"))?;
        let address = key.address();
        let owner = signing(key)?;
        for (token, info) in &cfg.tokens {
            let call = TransactionRequest::default()
                .to(*token)
                .input(TransactionInput::new(balanceOfCall { owner: address }.abi_encode().into()));
            let answer = chain
                .call(call)
                .await
                .with_context(|| format!("{}.balanceOf({address})", info.symbol))?;
            let amount = balanceOfCall::abi_decode_returns(&answer).context("balanceOf answer")?;
            if amount.is_zero() {
                continue;
            }
            let mut tx = TransactionRequest::default()
                .from(address)
                .to(*token)
                .input(TransactionInput::new(transferCall { to: cfg.treasury, amount }.abi_encode().into()));
            if !cfg.dry_run {
                let gas = chain.estimate_gas(tx.clone()).await.context("eth_estimateGas")?;
                let price = chain.get_gas_price().await.context("eth_gasPrice")?;
                let need = U256::from(gas) * U256::from(price);
                let have = chain.get_balance(address).await.context("eth_getBalance")?;
                if have < need {
                    let top_up = TransactionRequest::default().to(address).value(need - have).gas_price(price);
                    let receipt = gas_wallet
                        .send_transaction(top_up)
                        .await
                        .context("gas top-up")?
                        .get_receipt()
                        .await?;
                    anyhow::ensure!(receipt.status(), "the gas top-up of {address} failed: is the gas wallet funded?");
                }
                tx = tx.gas_limit(gas).gas_price(price);
            }
            let hash = match cfg.dry_run {
                true => None,
                false => {
                    let receipt = owner.send_transaction(tx).await.context("the transfer")?.get_receipt().await?;
                    anyhow::ensure!(receipt.status(), "the transfer of {} from {address} reverted", info.symbol);
                    Some(receipt.transaction_hash)
                }
            };
            swept.push(Swept {
                index,
                address,
                token: *token,
                amount,
                tx: hash,
            });
        }
    }
    Ok(swept)
}
