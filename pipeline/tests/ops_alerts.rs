//! The alert rules (`nats/alerts.yml`): valid for Prometheus (`promtool check rules`),
//! each firing on its condition and silent short of it (`promtool test rules
//! nats/alerts.test.yml`), and written only on metrics Herald declares (every
//! `herald_*` name in a rule is in docs/operations.md's table). The real Prometheus
//! scraping a running stack is `loadtest/tests/ops_prometheus.rs`.

use std::path::PathBuf;
use std::process::Command;

fn nats_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../nats")
}

fn promtool(args: &[&str]) -> String {
    let bin = std::env::var("HERALD_PROMTOOL").unwrap_or_else(|_| "promtool".into());
    let out = Command::new(&bin)
        .args(args)
        .current_dir(nats_dir())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {bin}: {e}; run scripts/install-deps (Debian's prometheus package)"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn the_rules_are_valid_and_their_unit_tests_pass() {
    let checked = promtool(&["check", "rules", "alerts.yml"]);
    assert!(checked.contains("SUCCESS: 8 rules found"), "{checked}");
    let tested = promtool(&["test", "rules", "alerts.test.yml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

#[test]
fn every_alert_is_tested_and_uses_declared_metrics() {
    let rules = std::fs::read_to_string(nats_dir().join("alerts.yml")).unwrap();
    let tests = std::fs::read_to_string(nats_dir().join("alerts.test.yml")).unwrap();
    let docs = include_str!("../../docs/operations.md");
    let alerts: Vec<&str> = rules.lines().filter_map(|l| l.trim().strip_prefix("- alert: ")).collect();
    assert_eq!(alerts.len(), 8, "{alerts:?}");
    for a in &alerts {
        assert!(tests.contains(&format!("alertname: {a}\n")), "{a} has no promtool test");
        assert!(docs.contains(&format!("`{a}`")), "{a} is missing from docs/operations.md's alerts");
    }
    let names: std::collections::BTreeSet<&str> = rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("herald_") && w.len() > "herald_".len())
        .collect();
    assert!(names.len() >= 8, "{names:?}");
    for n in names {
        assert!(docs.contains(&format!("| `{n}` |")), "the rules use {n}, which no one declares");
    }
}
