//! drand beacons: chain info, round arithmetic, and local verification of a beacon.
//!
//! A beacon is trusted only after [`verify`]: the BLS signature checks against the
//! chain's public key and `randomness == SHA-256(signature)`. The schemes are drand's
//! (<https://docs.drand.love>, `crypto/schemes.go` of drand/drand):
//!
//! | scheme | message | signature | public key | DST |
//! |---|---|---|---|---|
//! | `bls-unchained-g1-rfc9380` (quicknet) | `SHA-256(u64be(round))` | G1, 48 B | G2, 96 B | `BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_` |
//! | `pedersen-bls-chained` (default) | `SHA-256(previous_signature ‖ u64be(round))` | G2, 96 B | G1, 48 B | `BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_NUL_` |
//! | `pedersen-bls-unchained` | `SHA-256(u64be(round))` | G2, 96 B | G1, 48 B | same as above |
//!
//! ```
//! use herald_draw::beacon::{self, Beacon, QUICKNET};
//! let b = Beacon {
//!     round: 123,
//!     signature: "b75c69d0b72a5d906e854e808ba7e2accb1542ac355ae486d591aa9d43765482e26cd02df835d3546d23c4b13e0dfc92".into(),
//!     randomness: "fb8f7bc29bf24db51871ec8c79f3a1e4bd0557bc0dfcee9ed1d924e69d1c60dc".into(),
//!     previous_signature: None,
//! };
//! assert!(beacon::verify(&QUICKNET.info(), &b).is_ok());
//! ```

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A drand chain's public parameters, in the shape of its HTTP `/info` (v1 field names,
/// v2 names accepted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainInfo {
    /// The group public key, hex.
    pub public_key: String,
    /// Seconds between rounds.
    pub period: u64,
    /// Unix time (s) of round 1.
    pub genesis_time: u64,
    /// The chain hash, hex.
    #[serde(alias = "chain_hash")]
    pub hash: String,
    /// The signature scheme id.
    #[serde(rename = "schemeID", alias = "scheme")]
    pub scheme: String,
}

/// A chain pinned in code: what a relay's `/info` must equal field by field.
pub struct PinnedChain {
    pub public_key: &'static str,
    pub period: u64,
    pub genesis_time: u64,
    pub hash: &'static str,
    pub scheme: &'static str,
}

impl PinnedChain {
    /// As a [`ChainInfo`].
    pub fn info(&self) -> ChainInfo {
        ChainInfo {
            public_key: self.public_key.into(),
            period: self.period,
            genesis_time: self.genesis_time,
            hash: self.hash.into(),
            scheme: self.scheme.into(),
        }
    }
}

/// drand quicknet, the lottery's randomness (its chain info from drand/drand
/// `common/chain/info_test.go`, as in `tests/fixtures/drand_vectors.json`).
pub const QUICKNET: PinnedChain = PinnedChain {
    public_key: "83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c8c4b450b6a0a6c3ac6a5776a2d1064510d1fec758c921cc22b0e17e63aaf4bcb5ed66304de9cf809bd274ca73bab4af5a6e9c76a4bc09e76eae8991ef5ece45a",
    period: 3,
    genesis_time: 1692803367,
    hash: "52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971",
    scheme: "bls-unchained-g1-rfc9380",
};

/// One round's beacon, in the shape of a relay's `GET /{chain_hash}/public/{round}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Beacon {
    pub round: u64,
    /// Hex.
    pub randomness: String,
    /// Hex.
    pub signature: String,
    /// Hex; chained schemes only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_signature: Option<String>,
}

/// Why a beacon is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BeaconError {
    #[error("malformed beacon: {0}")]
    Malformed(String),
    #[error("randomness is not SHA-256 of the signature")]
    Randomness,
    #[error("the BLS signature does not verify against the chain's public key")]
    Signature,
    #[error("unknown drand scheme {0:?}")]
    UnknownScheme(String),
    #[error("beacon of round {got}, round {wanted} was asked for")]
    WrongRound { wanted: u64, got: u64 },
}

const DST_G1: &[u8] = b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_";
const DST_G2: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_NUL_";

fn unhex(field: &str, s: &str) -> Result<Vec<u8>, BeaconError> {
    hex::decode(s).map_err(|e| BeaconError::Malformed(format!("{field}: {e}")))
}

/// Checks `beacon` against `chain`: signature and randomness.
///
/// Errors: [`BeaconError`], naming what failed.
pub fn verify(chain: &ChainInfo, beacon: &Beacon) -> Result<(), BeaconError> {
    let signature = unhex("signature", &beacon.signature)?;
    let randomness = unhex("randomness", &beacon.randomness)?;
    let public_key = unhex("public_key", &chain.public_key)?;
    if Sha256::digest(&signature)[..] != randomness[..] {
        return Err(BeaconError::Randomness);
    }
    let round = beacon.round.to_be_bytes();
    let ok = match chain.scheme.as_str() {
        "bls-unchained-g1-rfc9380" => {
            let msg = Sha256::digest(round);
            let pk =
                blst::min_sig::PublicKey::key_validate(&public_key).map_err(|e| BeaconError::Malformed(format!("public key: {e:?}")))?;
            let sig = blst::min_sig::Signature::sig_validate(&signature, true).map_err(|_| BeaconError::Signature)?;
            sig.verify(true, &msg, DST_G1, &[], &pk, false)
        }
        "pedersen-bls-chained" | "pedersen-bls-unchained" => {
            let mut h = Sha256::new();
            if chain.scheme == "pedersen-bls-chained" {
                let prev = beacon
                    .previous_signature
                    .as_deref()
                    .ok_or_else(|| BeaconError::Malformed("previous_signature missing".into()))?;
                h.update(unhex("previous_signature", prev)?);
            }
            h.update(round);
            let msg = h.finalize();
            let pk =
                blst::min_pk::PublicKey::key_validate(&public_key).map_err(|e| BeaconError::Malformed(format!("public key: {e:?}")))?;
            let sig = blst::min_pk::Signature::sig_validate(&signature, true).map_err(|_| BeaconError::Signature)?;
            sig.verify(true, &msg, DST_G2, &[], &pk, false)
        }
        other => return Err(BeaconError::UnknownScheme(other.into())),
    };
    match ok {
        blst::BLST_ERROR::BLST_SUCCESS => Ok(()),
        _ => Err(BeaconError::Signature),
    }
}

/// Checks that `beacon` is round `wanted` of `chain` and verifies.
///
/// Errors: [`BeaconError::WrongRound`], or what [`verify`] finds.
pub fn verify_round(chain: &ChainInfo, wanted: u64, beacon: &Beacon) -> Result<(), BeaconError> {
    if beacon.round != wanted {
        return Err(BeaconError::WrongRound { wanted, got: beacon.round });
    }
    verify(chain, beacon)
}

/// Unix time (s) at which round `round` (≥ 1) is published: `genesis + (round − 1) · period`.
pub fn round_time(chain: &ChainInfo, round: u64) -> u64 {
    chain.genesis_time + round.saturating_sub(1) * chain.period
}

/// The draw round of a sale closing at `t_close` (unix s): the first round whose time
/// is at least `t_close + delay_s`, i.e. `ceil((t_close + delay_s − genesis) / period) + 1`
/// (rule 2 of `docs/lottery.md`; `delay_s` is 60 outside tests).
pub fn draw_round(chain: &ChainInfo, t_close: u64, delay_s: u64) -> u64 {
    let target = t_close + delay_s;
    if target <= chain.genesis_time {
        return 1;
    }
    (target - chain.genesis_time).div_ceil(chain.period) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draw_round_is_the_first_round_at_or_after_the_target() {
        let q = QUICKNET.info();
        for t_close in [1_700_000_000u64, 1_700_000_001, 1_700_000_002, 1_765_000_000] {
            let r = draw_round(&q, t_close, 60);
            assert!(round_time(&q, r) >= t_close + 60);
            assert!(round_time(&q, r - 1) < t_close + 60);
        }
    }
}
