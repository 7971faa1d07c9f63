//! A deposit token on a local anvil node: deploy the OpenZeppelin ERC-20 (fixture in
//! `pipeline/fixtures/`), pay from anvil's first (unlocked) account, mine blocks.

use alloy::primitives::{address, Address, Bytes, U256};
use alloy::providers::{Provider, RootProvider};
use alloy::rpc::types::{TransactionInput, TransactionReceipt, TransactionRequest};
use alloy::sol_types::{SolCall, SolValue};

alloy::sol! {
    function transfer(address to, uint256 amount) returns (bool);
    function balanceOf(address owner) returns (uint256);
}

/// anvil's first development account (unlocked): deploys and pays.
pub const PAYER: Address = address!("f39Fd6e51aad88F6F4ce6aB8827279cffFb92266");

/// The fixture token's symbol and decimals (the credit stage's BUSD in tests).
pub const BUSD: (&str, u8) = ("BUSD", 18);

/// A plain-HTTP provider for a local anvil node.
///
/// Errors: `url` is not a URL.
pub fn provider(url: &str) -> anyhow::Result<RootProvider> {
    // alloy's reqwest has TLS without a built-in provider (as the pipeline builds it)
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = url.parse().map_err(|e| anyhow::anyhow!("RPC URL {url:?}: {e}"))?;
    Ok(RootProvider::new_http(url))
}

async fn send(p: &RootProvider, tx: TransactionRequest) -> anyhow::Result<TransactionReceipt> {
    Ok(p.send_transaction(tx.from(PAYER)).await?.get_receipt().await?)
}

/// Deploys ERC20PresetFixedSupply("Binance-Peg BUSD Token", "BUSD", 10^27 base units,
/// [`PAYER`]); returns the contract address.
pub async fn deploy_token(p: &RootProvider) -> anyhow::Result<Address> {
    let artifact: serde_json::Value = serde_json::from_str(include_str!("../../fixtures/ERC20PresetFixedSupply.json"))?;
    let mut code = alloy::hex::decode(artifact["bytecode"].as_str().unwrap_or_default())?;
    let supply = U256::from(10).pow(U256::from(27));
    code.extend(("Binance-Peg BUSD Token".to_string(), "BUSD".to_string(), supply, PAYER).abi_encode_params());
    let receipt = send(p, TransactionRequest::default().create().input(TransactionInput::new(code.into()))).await?;
    receipt
        .contract_address
        .ok_or_else(|| anyhow::anyhow!("the deployment made no contract"))
}

/// Transfers `amount` base units of `token` to `to`; returns the block it was mined in.
pub async fn pay(p: &RootProvider, token: Address, to: Address, amount: U256) -> anyhow::Result<u64> {
    let data = transferCall { to, amount }.abi_encode();
    let receipt = send(
        p,
        TransactionRequest::default()
            .to(token)
            .input(TransactionInput::new(Bytes::from(data))),
    )
    .await?;
    anyhow::ensure!(receipt.status(), "transfer reverted");
    receipt.block_number.ok_or_else(|| anyhow::anyhow!("receipt without a block"))
}

/// Mines `blocks` empty blocks (`anvil_mine`).
pub async fn mine(p: &RootProvider, blocks: u64) -> anyhow::Result<()> {
    let _: serde_json::Value = p.raw_request("anvil_mine".into(), (U256::from(blocks),)).await?;
    Ok(())
}

/// `owner`'s balance of `token`, base units (`balanceOf` at the latest block).
///
/// Errors: the call failed or did not return a uint256.
pub async fn balance_of(p: &RootProvider, token: Address, owner: Address) -> anyhow::Result<U256> {
    let call = TransactionRequest::default()
        .to(token)
        .input(TransactionInput::new(balanceOfCall { owner }.abi_encode().into()));
    Ok(balanceOfCall::abi_decode_returns(&p.call(call).await?)?)
}
