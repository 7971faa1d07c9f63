//! A drand-like chain Herald signs itself (scheme `bls-unchained-g1-rfc9380`, like
//! quicknet), so tests and the relay stand-in can serve a beacon for any round at any
//! time. Its public key is configured in tests only; the lottery never accepts it
//! unless told to.
//!
//! ```
//! use herald_draw::{beacon, testchain::TestChain};
//! let chain = TestChain::new([7; 32], 1_700_000_000, 1);
//! let b = chain.sign(42);
//! assert!(beacon::verify_round(&chain.info, 42, &b).is_ok());
//! ```

use sha2::{Digest, Sha256};

use crate::beacon::{Beacon, ChainInfo};

const DST_G1: &[u8] = b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_";

/// A test chain: its secret key and its public [`ChainInfo`].
pub struct TestChain {
    secret: blst::min_sig::SecretKey,
    pub info: ChainInfo,
}

impl TestChain {
    /// A chain whose key derives from `ikm` (32 bytes of key material), with round 1 at
    /// `genesis_time` (unix s) and one round every `period` s. Its chain hash is
    /// `SHA-256("herald-test-chain" ‖ public key ‖ u64be(genesis) ‖ u64be(period))`
    /// (not drand's formula: it only needs to differ from every real chain's).
    pub fn new(ikm: [u8; 32], genesis_time: u64, period: u64) -> Self {
        let secret = blst::min_sig::SecretKey::key_gen(&ikm, &[]).expect("32 bytes of key material");
        let public_key = secret.sk_to_pk().compress();
        let mut h = Sha256::new();
        h.update(b"herald-test-chain");
        h.update(public_key);
        h.update(genesis_time.to_be_bytes());
        h.update(period.to_be_bytes());
        let info = ChainInfo {
            public_key: hex::encode(public_key),
            period,
            genesis_time,
            hash: hex::encode(h.finalize()),
            scheme: "bls-unchained-g1-rfc9380".into(),
        };
        TestChain { secret, info }
    }

    /// The beacon of `round`.
    pub fn sign(&self, round: u64) -> Beacon {
        let msg = Sha256::digest(round.to_be_bytes());
        let signature = self.secret.sign(&msg, DST_G1, &[]).compress();
        Beacon {
            round,
            randomness: hex::encode(Sha256::digest(signature)),
            signature: hex::encode(signature),
            previous_signature: None,
        }
    }
}
