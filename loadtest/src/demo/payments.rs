//! The payments half of the demo: a BEP-20 deposit on a real local chain (anvil, chain
//! id 56) is seen, credited once final, and buys a subscription in the emulator.
//!
//! The chain: anvil with the OpenZeppelin ERC-20 fixture deployed as "BUSD". Deposit
//! addresses derive from the xpub of a public test mnemonic (a demo wallet, never one
//! holding funds); finality is 3 confirmations, since anvil has no
//! `finalized` tag worth following.

use std::time::Duration;

use alloy::primitives::{Address, U256};
use herald_pipeline::products::payments::wallet::account_xpub;
use herald_testkit::{evm, LocalAnvil};

use super::ALICE;
use crate::emulator::Delivery;
use crate::stack::{callback_query, private_text, Stack};

/// The first BIP-39 test vector's mnemonic (public, for demos only): its addresses are not
/// anvil's funded accounts, so the payer is not its own recipient.
const DEMO_MNEMONIC: &str = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";
/// Blocks on top of a transfer before it counts as final.
const CONFIRMATIONS: u64 = 3;
/// What Alice deposits: 20 BUSD, in base units (18 decimals).
const DEPOSIT_BUSD: u64 = 20;
/// The tier she buys (`weekly`, 15 USD by the default `--tiers`).
const TIER: &str = "weekly";

/// A local chain with a deposit token on it.
pub struct DemoChain {
    pub anvil: LocalAnvil,
    pub token: Address,
    xpub: String,
}

impl DemoChain {
    /// Starts anvil and deploys the token.
    ///
    /// Errors: anvil missing (`scripts/install-deps` installs it) or the deployment failed.
    pub async fn start() -> anyhow::Result<Self> {
        let anvil = LocalAnvil::start()?;
        let token = evm::deploy_token(&evm::provider(&anvil.url())?).await?;
        Ok(DemoChain {
            anvil,
            token,
            xpub: account_xpub(DEMO_MNEMONIC)?,
        })
    }

    /// `pipeline run` arguments that switch deposits on against this chain.
    pub fn pipeline_args(&self) -> Vec<String> {
        [
            "--deposit-xpub",
            &self.xpub,
            "--deposit-tokens",
            &format!("BUSD:{}:18", self.token),
            "--rpc-url",
            &self.anvil.url(),
            "--finalized-tag",
            "false",
            "--confirmations",
            &CONFIRMATIONS.to_string(),
            "--watch-poll-ms",
            "200",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }
}

/// The address in the first `<code>` of a `/deposit` reply.
pub fn deposit_address(reply: &str) -> anyhow::Result<Address> {
    let start = reply.find("<code>").map(|i| i + "<code>".len());
    let address = start.and_then(|s| reply.get(s..s + 42));
    address
        .ok_or_else(|| anyhow::anyhow!("no address in the /deposit reply: {reply}"))?
        .parse()
        .map_err(|e| anyhow::anyhow!("the /deposit reply's address: {e}"))
}

async fn wait_for_text(stack: &Stack, what: &str, needle: &str) -> anyhow::Result<Delivery> {
    let d = stack
        .wait_for_deliveries(Duration::from_secs(30), |d| {
            d.iter().any(|x| x.chat_id == ALICE && x.text.contains(needle))
        })
        .await
        .map_err(|e| anyhow::anyhow!("waiting for {what}: {e}"))?;
    let found = d.into_iter().rev().find(|x| x.chat_id == ALICE && x.text.contains(needle));
    found.ok_or_else(|| anyhow::anyhow!("waiting for {what}"))
}

/// Alice asks for her deposit address, pays 20 BUSD on the chain, and once the transfer
/// is final buys a weekly subscription with the button under `/subscribe`, then checks
/// `/balance`. Returns the `/balance` reply.
///
/// Errors: any step's reply did not arrive within 30 s (names the step).
pub async fn run(stack: &Stack, chain: &DemoChain) -> anyhow::Result<Delivery> {
    println!("Alice asks for /deposit...");
    stack.emulator.push_update(private_text(ALICE, "/deposit"));
    let reply = wait_for_text(stack, "the /deposit reply", "Your deposit address").await?;
    let address = deposit_address(&reply.text)?;
    let provider = evm::provider(&chain.anvil.url())?;
    let amount = U256::from(DEPOSIT_BUSD) * U256::from(10).pow(U256::from(18));
    let block = evm::pay(&provider, chain.token, address, amount).await?;
    println!("Paid {DEPOSIT_BUSD} BUSD to {address} on anvil (block {block}); waiting until it is seen...");
    wait_for_text(stack, "the deposit-seen message", "Deposit of").await?;
    println!("Mining {CONFIRMATIONS} blocks so the transfer is final...");
    evm::mine(&provider, CONFIRMATIONS).await?;
    wait_for_text(stack, "the credit", "credited. Balance").await?;

    println!("Alice opens /subscribe and presses \"{TIER}\"...");
    stack.emulator.push_update(private_text(ALICE, "/subscribe"));
    let offer = wait_for_text(stack, "the /subscribe offer", "<b>Subscriptions</b>").await?;
    stack
        .emulator
        .push_update(callback_query(ALICE, offer.message_id, &format!("sub:{TIER}")));
    wait_for_text(stack, "the purchase", "subscription bought").await?;
    println!("Alice asks for /balance...");
    stack.emulator.push_update(private_text(ALICE, "/balance"));
    wait_for_text(stack, "the /balance reply", "<b>Balance:").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_is_read_from_the_deposit_reply() {
        let reply = herald_pipeline::products::payments::replies::deposit(Address::repeat_byte(7), &[]);
        assert_eq!(deposit_address(&reply.text).unwrap(), Address::repeat_byte(7));
        assert!(deposit_address("no address here").is_err());
    }
}
