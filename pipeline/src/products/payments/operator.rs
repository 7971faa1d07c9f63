//! `pipeline payments …`: the deposit wallet's operator commands. Only `xpub`,
//! `gas-address` and `sweep` read the mnemonic; `addresses` needs only the xpub.

use clap::{FromArgMatches, Subcommand};
use futures::future::BoxFuture;
use herald_runtime::classes::Classes;
use herald_runtime::config::ServersArgs;
use herald_schemas::subjects;

use crate::core::product::Operator;

/// The hook the registry puts under `pipeline payments`.
pub const OPERATOR: Operator = Operator {
    about: "The deposit wallet: the account xpub from the mnemonic, the addresses an xpub derives, sweeping deposits to the treasury",
    command: PaymentsCmd::augment_subcommands,
    run,
};

/// `pipeline payments` subcommands.
#[derive(Subcommand, Debug)]
pub enum PaymentsCmd {
    /// Print the extended public key of m/44'/60'/0'/0 for the mnemonic in
    /// `--mnemonic-file` or `$HERALD_MNEMONIC` (never printed or logged).
    Xpub {
        /// File holding the BIP-39 mnemonic (else `$HERALD_MNEMONIC`).
        #[arg(long, env = "HERALD_MNEMONIC_FILE")]
        mnemonic_file: Option<std::path::PathBuf>,
    },
    /// Print the gas wallet's address (m/44'/60'/1'/0/0 of the mnemonic): fund it with
    /// BNB for `sweep`'s gas top-ups.
    GasAddress {
        /// File holding the BIP-39 mnemonic (else `$HERALD_MNEMONIC`).
        #[arg(long, env = "HERALD_MNEMONIC_FILE")]
        mnemonic_file: Option<std::path::PathBuf>,
    },
    /// Move every assigned deposit address's accepted tokens to the treasury, topping up
    /// gas from the gas wallet (`--dry-run` lists them).
    Sweep {
        /// File holding the BIP-39 mnemonic (else `$HERALD_MNEMONIC`).
        #[arg(long, env = "HERALD_MNEMONIC_FILE")]
        mnemonic_file: Option<std::path::PathBuf>,
        #[command(flatten)]
        nats: ServersArgs,
        /// JSON-RPC endpoint of the chain (http or https).
        #[arg(long, env = "HERALD_BSC_RPC_URL")]
        rpc_url: String,
        /// The treasury address.
        #[arg(long)]
        to: alloy::primitives::Address,
        /// Tokens to sweep, `SYMBOL:contract:decimals`, comma-separated.
        #[arg(long, env = "HERALD_DEPOSIT_TOKENS", value_delimiter = ',', default_value = super::config::DEFAULT_DEPOSIT_TOKENS)]
        deposit_tokens: Vec<String>,
        /// List what would move; send nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the deposit addresses at indexes `from..from+count` of an xpub.
    Addresses {
        #[arg(long, env = "HERALD_DEPOSIT_XPUB")]
        xpub: String,
        #[arg(long, default_value_t = 0)]
        from: u32,
        #[arg(long, default_value_t = 10)]
        count: u32,
    },
}

/// The mnemonic from `--mnemonic-file` or `$HERALD_MNEMONIC` (never printed or logged).
fn read_mnemonic(file: Option<std::path::PathBuf>) -> anyhow::Result<String> {
    match file {
        Some(path) => std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display())),
        None => std::env::var("HERALD_MNEMONIC").map_err(|_| anyhow::anyhow!("give --mnemonic-file or set HERALD_MNEMONIC")),
    }
}

fn run(matches: clap::ArgMatches, classes: Classes) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(async move { execute(PaymentsCmd::from_arg_matches(&matches)?, classes).await })
}

async fn execute(cmd: PaymentsCmd, classes: Classes) -> anyhow::Result<()> {
    match cmd {
        PaymentsCmd::Xpub { mnemonic_file } => println!("{}", super::wallet::account_xpub(&read_mnemonic(mnemonic_file)?)?),
        PaymentsCmd::GasAddress { mnemonic_file } => println!("{}", super::sweep::gas_address(&read_mnemonic(mnemonic_file)?)?),
        PaymentsCmd::Sweep {
            mnemonic_file,
            nats,
            rpc_url,
            to,
            deposit_tokens,
            dry_run,
        } => {
            use super::sweep::{sweep_assigned, SweepConfig};
            let mnemonic = read_mnemonic(mnemonic_file)?;
            let tokens = super::config::parse_deposit_tokens(&deposit_tokens)?;
            let js = nats.connect(classes).await?;
            let cfg = SweepConfig {
                rpc_url,
                treasury: to,
                tokens: tokens.clone(),
                dry_run,
            };
            let (looked_at, swept) = sweep_assigned(&js.get_key_value(subjects::WALLET_BUCKET).await?, &mnemonic, &cfg).await?;
            for s in &swept {
                let info = tokens.iter().find(|(t, _)| *t == s.token).map(|(_, i)| i);
                let shown = info.map_or(s.amount.to_string(), |i| {
                    format!("{} {}", crate::core::ledger::money::units(s.amount, i.decimals), i.symbol)
                });
                let tx = s.tx.map_or("(dry run)".to_string(), |h| h.to_string());
                println!("{}\t{}\t{shown}\t{tx}", s.index, s.address);
            }
            println!("{} transfers from {looked_at} addresses", swept.len());
        }
        PaymentsCmd::Addresses { xpub, from, count } => {
            let wallet = super::wallet::DepositWallet::from_xpub(&xpub)?;
            for i in from..from.saturating_add(count) {
                println!("{i}\t{}", wallet.address(i)?);
            }
        }
    }
    Ok(())
}
