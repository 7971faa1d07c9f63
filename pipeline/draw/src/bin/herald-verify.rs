//! `herald-verify BUNDLE.json [--chain-info CHAIN.json]`: re-derives a Herald lottery
//! draw from its bundle and prints every check and the winners. Trusts only drand
//! quicknet's pinned chain info (or, for a test chain, the chain info file given).
//!
//! `herald-verify --proof PROOF.json`: checks one ticket's inclusion proof against the
//! tickets' root published at the close (compare that root with the one announced).
//!
//! Exit status: 0 when every check passes, 1 when one fails, 2 on unreadable input.

use std::process::ExitCode;

use herald_draw::beacon::{ChainInfo, QUICKNET};
use herald_draw::bundle::{self, Bundle};

fn read<T: serde::de::DeserializeOwned>(path: &str) -> Result<T, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))
}

fn check_proof(path: &str) -> ExitCode {
    let proof: herald_draw::proof::Proof = match read(path) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match proof.check() {
        Ok(()) => {
            println!(
                "ticket {} of receipt {} is in round {}'s root {} ({} tickets)",
                proof.ticket, proof.receipt_id, proof.round, proof.tickets_root, proof.tickets
            );
            println!("verified");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("{e}\nNOT verified");
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (bundle_path, chain_path) = match args.as_slice() {
        [flag, p] if flag == "--proof" => return check_proof(p),
        [b] => (b, None),
        [b, flag, c] if flag == "--chain-info" => (b, Some(c)),
        _ => {
            eprintln!("usage: herald-verify BUNDLE.json [--chain-info CHAIN.json] | herald-verify --proof PROOF.json");
            return ExitCode::from(2);
        }
    };
    let bundle: Bundle = match read(bundle_path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let chain: ChainInfo = match chain_path.map(|p| read(p)) {
        None => QUICKNET.info(),
        Some(Ok(c)) => {
            println!("note: trusting the chain info in {} instead of drand quicknet", chain_path.unwrap());
            c
        }
        Some(Err(e)) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let report = bundle::verify(&bundle, &chain);
    println!("round {} ({:?})", bundle.round, bundle.outcome);
    for c in &report.checks {
        match &c.result {
            Ok(detail) => println!("  ok    {:<13} {detail}", c.name),
            Err(why) => println!("  FAIL  {:<13} {why}", c.name),
        }
    }
    if report.ok() {
        for w in &bundle.winners {
            println!(
                "  place {}: ticket {} (receipt {}) wins {}",
                w.place, w.ticket, w.receipt_id, w.prize
            );
        }
        println!("verified");
        ExitCode::SUCCESS
    } else {
        println!("NOT verified");
        ExitCode::from(1)
    }
}
