//! The signer's metrics (see `herald_runtime::metric`).

use herald_runtime::metric::Metric;

/// Transactions signed, first ones and replacements.
pub const SIGNED: Metric = Metric::counter(
    "herald_signer_signed_total",
    "Transactions the signer signed (first ones and replacements)",
);
/// Replacements of a stuck transaction at a higher gas price.
pub const REPLACED: Metric = Metric::counter(
    "herald_signer_replaced_total",
    "Stuck transactions replaced with the same nonce at a higher gas price",
);
/// Withdrawals that ended, by outcome (`final`, `failed`).
pub const ENDED: Metric = Metric::counter("herald_signer_withdrawals_total", "Withdrawals that ended, by outcome").labelled(&["outcome"]);
/// Withdrawals queued for the hot wallet's funds.
pub const QUEUED: Metric = Metric::counter(
    "herald_signer_queued_total",
    "Withdrawals queued whole because the hot wallet was short of the token or of gas",
);

/// The hot wallet's balance of a token, base units (approximate above 2^53: a gauge is
/// a float; the money paths use integers).
pub const HOT_WALLET_TOKENS: Metric = Metric::gauge(
    "herald_signer_hot_wallet_tokens",
    "The hot wallet's balance of a token, base units, read at each watch and each send",
)
.labelled(&["token"]);
/// The hot wallet's native balance (gas), wei.
pub const HOT_WALLET_NATIVE: Metric = Metric::gauge(
    "herald_signer_hot_wallet_native_wei",
    "The hot wallet's native balance for gas, wei",
);
/// 1 while the hot wallet holds less of `--token` than `--low-balance`.
pub const HOT_WALLET_LOW: Metric = Metric::gauge(
    "herald_signer_hot_wallet_low",
    "1 while the hot wallet holds less of the token than --low-balance, else 0",
)
.labelled(&["token"]);

/// All of them.
pub const ALL: &[Metric] = &[
    SIGNED,
    REPLACED,
    ENDED,
    QUEUED,
    HOT_WALLET_TOKENS,
    HOT_WALLET_NATIVE,
    HOT_WALLET_LOW,
];

/// Sets the balance gauges from a funds reading.
pub fn record_funds(token: alloy::primitives::Address, tokens: alloy::primitives::U256, native: alloy::primitives::U256) {
    let f = |v: alloy::primitives::U256| f64::from(v);
    metrics::gauge!(HOT_WALLET_TOKENS.name, "token" => token.to_string()).set(f(tokens));
    metrics::gauge!(HOT_WALLET_NATIVE.name).set(f(native));
}
