//! Filter + fan-out decision cost at 10,000 and 100,000 users (the user index scan
//! for one signal), with realistic filter mixes.
//!
//! Run: `cargo bench -p herald-pipeline --bench fanout_index`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use herald_pipeline::products::signals::fanout::{SignalFacts, UserIndex};
use herald_schemas::{Chain, Filters, SignalsPrefs, User};

/// A mix: a third without filters, a third with FDV ranges spread over $10K–$10M,
/// a third with win-rate and chain filters.
fn index(users: i64) -> UserIndex {
    let mut idx = UserIndex::default();
    for id in 0..users {
        let filters = match id % 3 {
            0 => Filters::default(),
            1 => {
                let lo = 10_000.0 * 1.5f64.powi((id % 17) as i32);
                Filters {
                    min_fdv_usd: Some(lo),
                    max_fdv_usd: Some(lo * 4.0),
                    ..Default::default()
                }
            }
            _ => Filters {
                min_win_rate: Some(0.5 + (id % 5) as f64 / 10.0),
                chains: vec![Chain::from("solana")],
                ..Default::default()
            },
        };
        let prefs = SignalsPrefs {
            filters,
            ..SignalsPrefs::new(id)
        };
        idx.upsert(User::new(id, id, 0), prefs, None);
    }
    idx
}

fn bench(c: &mut Criterion) {
    let facts = SignalFacts {
        chain: Some(Chain::from("solana")),
        fdv_usd: Some(250_000.0),
        new_caller_stats: vec![(0.72, 140.0)],
        paid_after_ms: 0,
    };
    let mut group = c.benchmark_group("fanout_matching");
    for users in [10_000i64, 100_000] {
        let idx = index(users);
        eprintln!("{users} users: {} match the signal", idx.matching(&facts).len());
        group.bench_with_input(BenchmarkId::from_parameter(users), &idx, |b, idx| {
            b.iter(|| idx.matching(std::hint::black_box(&facts)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
