//! Where a withdrawal may go: a BEP-20 address as the user typed it, checked before any
//! money moves.
//!
//! Rules (issue 23): the address is 20 bytes of hex with `0x`; mixed case must carry a
//! valid EIP-55 checksum (<https://eips.ethereum.org/EIPS/eip-55>: all-lower or
//! all-upper hex has none, so it is taken as it is); the zero address, a token contract
//! we accept, and the user's own deposit address are refused (tokens sent there are
//! lost, or come back as a deposit).

use alloy::primitives::Address;

/// Why an address is refused; `Display` is the sentence the user reads (no markup).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Not `0x` and 40 hex digits.
    NotAnAddress,
    /// Mixed case whose EIP-55 checksum does not match: a typo, most likely.
    BadChecksum,
    /// `0x000…0`: tokens sent there are burned.
    Zero,
    /// One of the token contracts (symbol): the contract would keep the tokens.
    TokenContract(String),
    /// The user's own deposit address: it would come back as a deposit, less the gas.
    OwnDeposit,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::NotAnAddress => f.write_str("that is not a BEP-20 address (0x and 40 hex digits)"),
            Refused::BadChecksum => f.write_str("the address's checksum (its mix of capitals) is wrong: check for a typo"),
            Refused::Zero => f.write_str("the zero address burns what is sent to it"),
            Refused::TokenContract(symbol) => write!(f, "that is the {symbol} token's contract, not a wallet"),
            Refused::OwnDeposit => f.write_str("that is your own deposit address"),
        }
    }
}

/// Checks a typed destination. `tokens` are the accepted tokens (symbol, contract);
/// `own_deposit` is the user's deposit address, if they have one.
///
/// Returns the address, or why it is refused.
///
/// ```
/// use alloy::primitives::Address;
/// use herald_pipeline::products::payments::destination::{destination, Refused};
/// let ok = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"; // EIP-55's own example
/// assert!(destination(ok, &[], None).is_ok());
/// assert!(destination(&ok.to_lowercase(), &[], None).is_ok(), "no checksum to check");
/// assert_eq!(destination("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", &[], None), Err(Refused::BadChecksum));
/// assert_eq!(destination("0x0000000000000000000000000000000000000000", &[], None), Err(Refused::Zero));
/// assert_eq!(destination("0x12", &[], None), Err(Refused::NotAnAddress));
/// let mine: Address = ok.parse().unwrap();
/// assert_eq!(destination(ok, &[], Some(mine)), Err(Refused::OwnDeposit));
/// assert_eq!(destination(ok, &[("USDT".into(), mine)], None), Err(Refused::TokenContract("USDT".into())));
/// ```
pub fn destination(text: &str, tokens: &[(String, Address)], own_deposit: Option<Address>) -> Result<Address, Refused> {
    let text = text.trim();
    let hex = text.strip_prefix("0x").ok_or(Refused::NotAnAddress)?;
    if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Refused::NotAnAddress);
    }
    let mixed = hex.bytes().any(|b| b.is_ascii_lowercase()) && hex.bytes().any(|b| b.is_ascii_uppercase());
    let address = if mixed {
        Address::parse_checksummed(text, None).map_err(|_| Refused::BadChecksum)?
    } else {
        text.parse().map_err(|_| Refused::NotAnAddress)?
    };
    if address == Address::ZERO {
        return Err(Refused::Zero);
    }
    if let Some((symbol, _)) = tokens.iter().find(|(_, contract)| *contract == address) {
        return Err(Refused::TokenContract(symbol.clone()));
    }
    if own_deposit == Some(address) {
        return Err(Refused::OwnDeposit);
    }
    Ok(address)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any non-zero address, written checksummed, lower or upper case, is accepted as
        /// itself; one letter's case flipped in a checksummed address is refused.
        #[test]
        fn every_spelling_of_an_address_is_itself_and_a_flipped_letter_is_caught(bytes in any::<[u8; 20]>(), pick in any::<usize>()) {
            let a = Address::from(bytes);
            prop_assume!(a != Address::ZERO);
            let sum = a.to_checksum(None);
            prop_assert_eq!(destination(&sum, &[], None), Ok(a));
            prop_assert_eq!(destination(&sum.to_lowercase(), &[], None), Ok(a));
            prop_assert_eq!(destination(&format!("0x{}", sum[2..].to_uppercase()), &[], None), Ok(a));
            let letters: Vec<usize> = sum.char_indices().skip(2).filter(|(_, c)| c.is_ascii_alphabetic()).map(|(i, _)| i).collect();
            // an all-letter-one-case spelling has no checksum to break
            let mixed = sum[2..].chars().any(|c| c.is_ascii_lowercase()) && sum[2..].chars().any(|c| c.is_ascii_uppercase());
            if mixed && letters.len() >= 3 {
                let i = letters[pick % letters.len()];
                let mut flipped: Vec<u8> = sum.clone().into_bytes();
                flipped[i] ^= 0x20;
                let flipped = String::from_utf8(flipped).unwrap();
                let still_mixed = flipped[2..].chars().any(|c| c.is_ascii_lowercase()) && flipped[2..].chars().any(|c| c.is_ascii_uppercase());
                if still_mixed {
                    prop_assert_eq!(destination(&flipped, &[], None), Err(Refused::BadChecksum));
                }
            }
        }

        /// Whatever is typed, the answer is an address equal to the text (case aside) or
        /// a refusal; never a panic.
        #[test]
        fn any_text_is_an_address_or_a_reason(text in ".{0,60}") {
            if let Ok(a) = destination(&text, &[], None) {
                prop_assert_eq!(format!("{a:#x}"), text.trim().to_lowercase());
            }
        }
    }
}
