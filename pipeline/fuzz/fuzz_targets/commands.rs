//! The router's update decoding and command split, and every product's command and
//! callback parsers: never a panic; a parsed filter edit is in range.
#![no_main]

use herald_pipeline::core::router::{referrer, split_command};
use herald_pipeline::products::signals::commands::{edited, parse_callback, parse_filter_args, SignalsCommand};
use herald_pipeline::products::{chat, lottery, payments, signals, trivia};
use herald_schemas::checks::ChainList;
use herald_schemas::Filters;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(update) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(kind) = herald_schemas::telegram::update_kind(&update) {
            let _ = herald_schemas::telegram::update_sender(&update);
            let _ = kind;
        }
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let chains = ChainList::default();
    let _ = split_command(text);
    let _ = referrer(text);
    let _ = SignalsCommand::from_text(text);
    let _ = chat::commands::ChatCommand::from_text(text);
    let _ = lottery::commands::LotteryCommand::from_text(text);
    let _ = payments::commands::PaymentsCommand::from_text(text);
    let _ = payments::commands::parse_callback(text);
    let _ = trivia::commands::TriviaCommand::from_text(text);
    let _ = signals::calls::parse_callback(text);
    let filters = Filters::default();
    for edit in [parse_filter_args(text, &chains).ok(), parse_callback(text, &chains).and_then(Result::ok)].into_iter().flatten() {
        if let Ok(f) = edited(&filters, edit) {
            assert!(f.min_win_rate.is_none_or(|w| (0.0..=1.0).contains(&w)), "{text:?}");
            if let (Some(lo), Some(hi)) = (f.min_fdv_usd, f.max_fdv_usd) {
                assert!(lo <= hi, "{text:?}");
            }
        }
    }
});
