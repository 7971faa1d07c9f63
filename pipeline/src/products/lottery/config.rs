//! The lottery's flags (`pipeline run --lottery-...`).

use std::time::Duration;

use herald_draw::beacon::{ChainInfo, QUICKNET};
use herald_runtime::config::parse_duration;

/// How rounds are run. Defaults are the fairness contract's (`docs/lottery.md`).
#[derive(clap::Args, Debug, Clone)]
pub struct LotteryArgs {
    /// Ticket price in USD (the ledger's unit; up to 18 decimals).
    #[arg(long, env = "HERALD_LOTTERY_PRICE_USD", default_value = "1")]
    pub lottery_price_usd: String,
    /// Time between sale closes.
    #[arg(long, env = "HERALD_LOTTERY_PERIOD", default_value = "7d", value_parser = parse_duration)]
    pub lottery_period: Duration,
    /// A sale close time (unix s); closes fall on it plus whole periods. The default is
    /// Sunday 1970-01-04 18:00 UTC: weekly closes on Sundays at 18:00 UTC.
    #[arg(long, env = "HERALD_LOTTERY_ANCHOR", default_value_t = 324_000)]
    pub lottery_anchor: u64,
    /// House fee in basis points of the pot; referral rewards come out of it.
    #[arg(long, env = "HERALD_LOTTERY_FEE_BPS", default_value_t = 1000)]
    pub lottery_fee_bps: u32,
    /// Prize shares in basis points of the pot after the fee, 1st place first.
    #[arg(long, env = "HERALD_LOTTERY_SHARES_BPS", value_delimiter = ',', default_value = "5000,2000,1000")]
    pub lottery_shares_bps: Vec<u32>,
    /// Referral rates in basis points of the referred users' ticket spend, level 1
    /// (the direct referrer) first. Their sum may not exceed the fee.
    #[arg(long, env = "HERALD_LOTTERY_REFERRAL_BPS", value_delimiter = ',', default_value = "500,300,100")]
    pub lottery_referral_bps: Vec<u32>,
    /// drand HTTP relays, tried in order (failover).
    #[arg(
        long,
        env = "HERALD_LOTTERY_RELAYS",
        value_delimiter = ',',
        default_value = "https://api.drand.sh,https://api2.drand.sh,https://api3.drand.sh,https://drand.cloudflare.com"
    )]
    pub lottery_relays: Vec<String>,
    /// TESTS ONLY: trust this chain (drand `/info` JSON) instead of drand quicknet.
    #[arg(long, env = "HERALD_LOTTERY_TEST_CHAIN_INFO")]
    pub lottery_test_chain_info: Option<String>,
    /// `R` is the first beacon at or after the close plus this (60 s by the rules; shorter
    /// in tests only).
    #[arg(long, env = "HERALD_LOTTERY_BEACON_DELAY", default_value = "60s", value_parser = parse_duration)]
    pub lottery_beacon_delay: Duration,
    /// A seed not revealed this long after `time(R)` refunds every ticket of the round.
    #[arg(long, env = "HERALD_LOTTERY_REVEAL_DEADLINE", default_value = "1h", value_parser = parse_duration)]
    pub lottery_reveal_deadline: Duration,
    /// Most tickets one `/buy` may take.
    #[arg(long, env = "HERALD_LOTTERY_MAX_TICKETS", default_value_t = 1000)]
    pub lottery_max_tickets: u64,
    /// How often the scheduler looks at the rounds.
    #[arg(long, env = "HERALD_LOTTERY_TICK", default_value = "1s", value_parser = parse_duration)]
    pub lottery_tick: Duration,
    /// Where the draw bundles are served (`GET /lottery/rounds/<round>/bundle.json`).
    #[arg(long, env = "HERALD_LOTTERY_HTTP", default_value = "127.0.0.1:8092")]
    pub lottery_http: std::net::SocketAddr,
    /// The public URL of that server, for `/verify` links.
    #[arg(long, env = "HERALD_LOTTERY_PUBLIC_URL", default_value = "http://127.0.0.1:8092")]
    pub lottery_public_url: String,
    /// The bot's username, for `/ref` links (`https://t.me/<bot>?start=ref_<id>`).
    #[arg(long, env = "HERALD_BOT_USERNAME", default_value = "HeraldBot")]
    pub bot_username: String,
}

/// A round's parameters, fixed when it opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundRules {
    /// Base units.
    pub price: u128,
    pub fee_bps: u32,
    pub shares_bps: Vec<u32>,
    pub referral_bps: Vec<u32>,
    pub period_s: u64,
    pub anchor_s: u64,
    pub beacon_delay_s: u64,
}

impl LotteryArgs {
    /// The rules of the rounds to open.
    ///
    /// Errors: a price that is not a USD amount; a fee or shares above 100%; no prize
    /// share; referral rates that could exceed the fee (rule 7).
    pub fn rules(&self) -> anyhow::Result<RoundRules> {
        let price = crate::core::ledger::money::parse_usd(&self.lottery_price_usd)?;
        let price = u128::try_from(price).map_err(|_| anyhow::anyhow!("--lottery-price-usd too large"))?;
        anyhow::ensure!(price > 0, "--lottery-price-usd must be above zero");
        anyhow::ensure!(self.lottery_fee_bps <= 10_000, "--lottery-fee-bps {} is above 100%", self.lottery_fee_bps);
        let shares: u32 = self.lottery_shares_bps.iter().sum();
        anyhow::ensure!(!self.lottery_shares_bps.is_empty() && shares <= 10_000, "--lottery-shares-bps must name at least one place and add up to at most 10000");
        let referral: u32 = self.lottery_referral_bps.iter().sum();
        anyhow::ensure!(
            referral <= self.lottery_fee_bps,
            "--lottery-referral-bps add up to {referral} bps of ticket spend, more than the fee ({} bps of the pot): rewards could exceed the fee",
            self.lottery_fee_bps
        );
        anyhow::ensure!(self.lottery_period.as_secs() >= 1, "--lottery-period must be at least 1s");
        Ok(RoundRules {
            price,
            fee_bps: self.lottery_fee_bps,
            shares_bps: self.lottery_shares_bps.clone(),
            referral_bps: self.lottery_referral_bps.clone(),
            period_s: self.lottery_period.as_secs(),
            anchor_s: self.lottery_anchor,
            beacon_delay_s: self.lottery_beacon_delay.as_secs(),
        })
    }

    /// The drand chain trusted: quicknet, pinned, unless a test chain is given.
    ///
    /// Errors: the test chain info is not drand `/info` JSON.
    pub fn chain(&self) -> anyhow::Result<ChainInfo> {
        match &self.lottery_test_chain_info {
            None => Ok(QUICKNET.info()),
            Some(json) => {
                tracing::warn!("lottery: trusting a TEST drand chain (--lottery-test-chain-info); never in production");
                serde_json::from_str(json).map_err(|e| anyhow::anyhow!("--lottery-test-chain-info: {e}"))
            }
        }
    }
}

impl RoundRules {
    /// The first sale close strictly after `now_s`: `anchor + k · period`.
    ///
    /// ```
    /// # use herald_pipeline::products::lottery::config::RoundRules;
    /// let r = RoundRules { price: 1, fee_bps: 0, shares_bps: vec![1], referral_bps: vec![], period_s: 604_800, anchor_s: 324_000, beacon_delay_s: 60 };
    /// let close = r.next_close(1_764_700_000); // Tue 2 Dec 2025
    /// assert!(close > 1_764_700_000 && close - 1_764_700_000 <= 604_800);
    /// assert_eq!((close - 324_000) % 604_800, 0);
    /// ```
    pub fn next_close(&self, now_s: u64) -> u64 {
        if now_s < self.anchor_s {
            return self.anchor_s;
        }
        self.anchor_s + ((now_s - self.anchor_s) / self.period_s + 1) * self.period_s
    }
}
