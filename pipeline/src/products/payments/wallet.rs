//! Deposit addresses: an HD wallet from a BIP-39 mnemonic, BIP-44 path
//! `m/44'/60'/0'/0/i` (Ethereum's coin type; BNB Smart Chain uses the same addresses).
//!
//! The mnemonic is needed only to make the account's extended public key
//! (`pipeline payments xpub`); every other process derives addresses from that xpub, which
//! cannot sign anything.

use alloy::primitives::Address;
use coins_bip32::enc::{MainnetEncoder, XKeyEncoder};
use coins_bip32::prelude::{Hint, Parent, XPriv, XPub};

/// The BIP-44 account path whose children are deposit addresses.
pub const ACCOUNT_PATH: &str = "m/44'/60'/0'/0";

/// The extended public key (`xpub...`, base58) of [`ACCOUNT_PATH`] for `mnemonic`.
///
/// Errors: the phrase is not a valid English BIP-39 mnemonic. The error never contains
/// the phrase.
///
/// ```
/// use herald_pipeline::products::payments::wallet::{account_xpub, DepositWallet};
/// // the well-known development mnemonic (anvil's and hardhat's accounts)
/// let xpub = account_xpub("test test test test test test test test test test test junk").unwrap();
/// assert!(xpub.starts_with("xpub"));
/// let wallet = DepositWallet::from_xpub(&xpub).unwrap();
/// assert_eq!(wallet.address(0).unwrap().to_string(), "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
/// ```
pub fn account_xpub(mnemonic: &str) -> anyhow::Result<String> {
    use coins_bip39::{English, Mnemonic};
    let phrase = Mnemonic::<English>::new_from_phrase(mnemonic.trim())
        .map_err(|_| anyhow::anyhow!("the mnemonic is not a valid English BIP-39 phrase"))?;
    let seed = phrase.to_seed(None).map_err(|_| anyhow::anyhow!("deriving the seed failed"))?;
    // the legacy version bytes: "xpub...", as wallets export it (coins' default is "zpub")
    let account = XPriv::root_from_seed(&seed, Some(Hint::Legacy))?.derive_path(ACCOUNT_PATH)?;
    Ok(MainnetEncoder::xpub_to_base58(&account.verify_key())?)
}

/// Derives deposit addresses from the account's extended public key.
#[derive(Clone)]
pub struct DepositWallet {
    account: XPub,
}

impl DepositWallet {
    /// Parses an `xpub...` made by [`account_xpub`].
    ///
    /// Errors: not a base58check mainnet extended public key.
    pub fn from_xpub(xpub: &str) -> anyhow::Result<Self> {
        let xpub = xpub.trim();
        // 82 bytes in base58 are 111 characters; coins-bip32 panics on shorter input
        anyhow::ensure!(
            xpub.len() == 111,
            "not an xpub: expected 111 characters (pipeline payments xpub makes one)"
        );
        let account = MainnetEncoder::xpub_from_base58(xpub).map_err(|e| anyhow::anyhow!("not an xpub: {e}"))?;
        Ok(DepositWallet { account })
    }

    /// The address at index `i` (`m/44'/60'/0'/0/i`); `i` < 2^31 (non-hardened).
    ///
    /// Errors: `i` is 2^31 or more.
    pub fn address(&self, i: u32) -> anyhow::Result<Address> {
        anyhow::ensure!(i < 1 << 31, "address index {i} is out of the non-hardened range");
        let child = self.account.derive_child(i)?;
        Ok(Address::from_public_key(child.as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_xpub_is_an_error_not_a_panic() {
        let good = account_xpub("test test test test test test test test test test test junk").unwrap();
        let mut bad_checksum = good.clone();
        bad_checksum.replace_range(50..51, if &good[50..51] == "a" { "b" } else { "a" });
        for bad in ["", "x", "xpub", "not base58 0OIl", &good[..100], &bad_checksum, &format!("{good}1")] {
            assert!(DepositWallet::from_xpub(bad).is_err(), "{bad:?}");
        }
        assert!(DepositWallet::from_xpub(&good).is_ok());
    }
}
