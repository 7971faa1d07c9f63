//! The payments product's flags (`pipeline run`, `pipeline payments`) and amount parsing.

/// BSC mainnet USDT and BUSD, both 18 decimals (contract addresses from BscScan), as
/// `--deposit-tokens` takes them.
pub const DEFAULT_DEPOSIT_TOKENS: &str =
    "USDT:0x55d398326f99059fF775485246999027B3197955:18,BUSD:0xe9e7CEA3DedcA5984780Bafc599bD69ADd087D56:18";

/// Deposits on BNB Smart Chain: off unless `--deposit-xpub` is set.
#[derive(clap::Args, Debug, Clone)]
pub struct PaymentsArgs {
    /// Extended public key of m/44'/60'/0'/0 (`pipeline payments xpub`): deposit addresses
    /// derive from it. With it, `/deposit`, `/balance` and the `credit` stage run.
    #[arg(long, env = "HERALD_DEPOSIT_XPUB")]
    pub deposit_xpub: Option<String>,
    /// BEP-20 tokens accepted, `SYMBOL:contract:decimals`, comma-separated. Default: BSC
    /// mainnet USDT and BUSD (both 18 decimals; addresses from BscScan).
    #[arg(long, env = "HERALD_DEPOSIT_TOKENS", value_delimiter = ',', default_value = DEFAULT_DEPOSIT_TOKENS)]
    pub deposit_tokens: Vec<String>,
    /// Smallest deposit credited, USD (smaller ones are recorded and the user told).
    #[arg(long, env = "HERALD_MIN_DEPOSIT_USD", default_value = "1")]
    pub min_deposit_usd: String,
    /// JSON-RPC endpoint of the chain (http); with it the `watcher` runs.
    #[arg(long, env = "HERALD_BSC_RPC_URL")]
    pub rpc_url: Option<String>,
    /// Chain name in subjects and the watcher's cursor key.
    #[arg(long, env = "HERALD_DEPOSIT_CHAIN", default_value = "bsc")]
    pub deposit_chain: String,
    /// Blocks below the head that count as final when the node has no `finalized` tag.
    #[arg(long, env = "HERALD_CONFIRMATIONS", default_value_t = 15)]
    pub confirmations: u64,
    /// Ask the node for its `finalized` block (BSC has fast finality).
    #[arg(long, env = "HERALD_FINALIZED_TAG", default_value_t = true, action = clap::ArgAction::Set)]
    pub finalized_tag: bool,
    /// Free trial for new users, days.
    #[arg(long, env = "HERALD_TRIAL_DAYS", default_value_t = 3)]
    pub trial_days: u64,
    /// Subscription tiers, `name:days:usd` (days 0 = lifetime), comma-separated.
    #[arg(
        long,
        env = "HERALD_TIERS",
        value_delimiter = ',',
        default_value = "daily:1:3,weekly:7:15,monthly:30:50,lifetime:0:300"
    )]
    pub tiers: Vec<String>,
    /// Milliseconds between watcher rounds: under half a second keeps "credited" within
    /// a second of finality (BSC makes a block every 0.75 s since the Maxwell upgrade).
    #[arg(long, env = "HERALD_WATCH_POLL_MS", default_value_t = 500)]
    pub watch_poll_ms: u64,
    /// Blocks per `eth_getLogs` request.
    #[arg(long, env = "HERALD_MAX_BLOCK_RANGE", default_value_t = 1000)]
    pub max_block_range: u64,
    #[command(flatten)]
    pub withdraw: WithdrawArgs,
    #[command(flatten)]
    pub nowpayments: super::nowpayments::NowPaymentsArgs,
}

/// Withdrawals (`/withdraw`): off unless `--withdrawals` is set, since only a running
/// `herald-signer` sends them. Amounts are USD (ledger units), as `/withdraw` takes them.
#[derive(clap::Args, Debug, Clone)]
pub struct WithdrawArgs {
    /// Offer `/withdraw` (approved withdrawals go to `herald.withdrawals.approved.<chain>`
    /// for the signer).
    #[arg(long, env = "HERALD_WITHDRAWALS", default_value_t = false)]
    pub withdrawals: bool,
    /// The token paid out, a symbol of `--deposit-tokens` (default: the first).
    #[arg(long, env = "HERALD_WITHDRAW_TOKEN")]
    pub withdraw_token: Option<String>,
    /// The fee kept from each withdrawal, USD (it pays the signer's gas).
    #[arg(long, env = "HERALD_WITHDRAW_FEE_USD", default_value = "1")]
    pub withdraw_fee_usd: String,
    /// The smallest withdrawal, USD, fee included.
    #[arg(long, env = "HERALD_WITHDRAW_MIN_USD", default_value = "10")]
    pub withdraw_min_usd: String,
    /// What one user may withdraw per UTC day, USD.
    #[arg(long, env = "HERALD_WITHDRAW_USER_DAILY_USD", default_value = "2000")]
    pub withdraw_user_daily_usd: String,
    /// What the hot wallet may send per UTC day, all users together, USD: it bounds
    /// what a stolen signer host or a compromised pipeline can take in a day.
    #[arg(long, env = "HERALD_WITHDRAW_DAILY_USD", default_value = "20000")]
    pub withdraw_daily_usd: String,
    /// Withdrawals above this wait for an admin's approval (`/admin withdrawals`), USD.
    #[arg(long, env = "HERALD_WITHDRAW_APPROVAL_ABOVE_USD", default_value = "500")]
    pub withdraw_approval_above_usd: String,
}

impl PaymentsArgs {
    /// `--deposit-xpub`; an empty value (an unset variable passed on by docker-compose)
    /// counts as none.
    pub fn xpub(&self) -> Option<&str> {
        self.deposit_xpub.as_deref().filter(|x| !x.trim().is_empty())
    }

    /// `--rpc-url`; empty counts as none, as for [`Self::xpub`].
    pub fn rpc(&self) -> Option<&str> {
        self.rpc_url.as_deref().filter(|x| !x.trim().is_empty())
    }

    /// `--deposit-tokens`, parsed, in the order given.
    ///
    /// Errors: a token is not `SYMBOL:contract:decimals` (see [`parse_deposit_token`]).
    pub fn accepted_tokens(&self) -> anyhow::Result<Vec<(alloy::primitives::Address, super::credit::DepositToken)>> {
        parse_deposit_tokens(&self.deposit_tokens)
    }
}

/// Every `SYMBOL:contract:decimals` of a list, in order.
///
/// Errors: the first that does not parse (see [`parse_deposit_token`]).
pub fn parse_deposit_tokens(list: &[String]) -> anyhow::Result<Vec<(alloy::primitives::Address, super::credit::DepositToken)>> {
    list.iter().map(|t| parse_deposit_token(t)).collect()
}

/// `SYMBOL:contract:decimals` -> the token.
///
/// Errors: not three parts, a bad address, or decimals not a number.
pub fn parse_deposit_token(s: &str) -> anyhow::Result<(alloy::primitives::Address, super::credit::DepositToken)> {
    let parts: Vec<&str> = s.trim().split(':').collect();
    let [symbol, contract, decimals] = parts[..] else {
        anyhow::bail!("deposit token {s:?}: expected SYMBOL:contract:decimals")
    };
    Ok((
        contract.parse().map_err(|e| anyhow::anyhow!("deposit token {s:?}: {e}"))?,
        super::credit::DepositToken {
            symbol: symbol.to_string(),
            decimals: decimals.parse()?,
        },
    ))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        payments: super::PaymentsArgs,
    }

    #[test]
    fn an_empty_xpub_or_rpc_url_is_off() {
        let parse = |args: &[&str]| Cli::parse_from(["pipeline"].iter().chain(args)).payments;
        assert!(parse(&[]).xpub().is_none(), "no deposits without an xpub");
        assert_eq!(parse(&["--deposit-xpub", "xpub"]).xpub(), Some("xpub"));
        assert!(parse(&["--deposit-xpub", " "]).xpub().is_none(), "empty is off");
        assert!(parse(&["--rpc-url", ""]).rpc().is_none());
    }
}
