//! The hot wallet's key: read once from a file or an environment variable, never logged,
//! wiped from memory when dropped.
//!
//! The hex text is held in a [`Zeroizing`] buffer and wiped as soon as it is parsed; the
//! parsed key is a k256 `SigningKey` inside alloy's `PrivateKeySigner`, which wipes
//! itself on drop (`ZeroizeOnDrop`). The key's `Debug` shows only the address.

use std::str::FromStr;

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use zeroize::Zeroizing;

/// Where the key comes from: `--key-file PATH` (a file holding the 32-byte key as hex,
/// readable by the signer's user only) or `HERALD_SIGNER_KEY`.
#[derive(clap::Args, Debug, Clone)]
pub struct KeyArgs {
    /// A file holding the hot wallet's private key as hex (0x optional).
    #[arg(long, env = "HERALD_SIGNER_KEY_FILE")]
    pub key_file: Option<std::path::PathBuf>,
}

/// The environment variable that may hold the key instead of a file.
pub const KEY_ENV: &str = "HERALD_SIGNER_KEY";

/// The hot wallet's signing key.
pub struct HotKey(PrivateKeySigner);

impl std::fmt::Debug for HotKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HotKey({})", self.address())
    }
}

impl HotKey {
    /// The key from `--key-file`, else from `HERALD_SIGNER_KEY`.
    ///
    /// Errors: neither given, the file unreadable, or not a 32-byte hex key (the error
    /// never contains the key).
    pub fn load(args: &KeyArgs) -> anyhow::Result<Self> {
        let text = match &args.key_file {
            Some(path) => Zeroizing::new(std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("key file {}: {e}", path.display()))?),
            None => Zeroizing::new(std::env::var(KEY_ENV).map_err(|_| anyhow::anyhow!("no key: pass --key-file or set {KEY_ENV}"))?),
        };
        Self::from_hex(&text)
    }

    /// The key from its hex text.
    ///
    /// ```
    /// // anvil's first development key
    /// let key = herald_signer::key::HotKey::from_hex("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80").unwrap();
    /// assert_eq!(key.address().to_string(), "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
    /// assert!(!format!("{key:?}").contains("ac0974"));
    /// assert!(herald_signer::key::HotKey::from_hex("0x12").is_err());
    /// ```
    ///
    /// Errors: not a 32-byte hex key.
    pub fn from_hex(text: &str) -> anyhow::Result<Self> {
        PrivateKeySigner::from_str(text.trim())
            .map(HotKey)
            .map_err(|_| anyhow::anyhow!("the signer key is not a 32-byte hex private key"))
    }

    /// The hot wallet's address.
    pub fn address(&self) -> Address {
        self.0.address()
    }

    /// The signer, for signing transactions.
    pub fn signer(&self) -> &PrivateKeySigner {
        &self.0
    }
}
