//! Solana `transactionNotification` frames (Raydium pool creations): never a panic.
#![no_main]

use herald_pipeline::products::signals::sources::websocket::{parse_frame, Protocol};
use herald_schemas::checks::ChainList;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(event)) = parse_frame(Protocol::SolanaTransactions, data, 1, &ChainList::default()) {
        assert!(event.output().subject.starts_with("herald.calls.solana."));
    }
});
