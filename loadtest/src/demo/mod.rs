//! The README's main job: real recorded inputs through the whole stack.
//!
//! Two users /start the bot in the emulator (one narrows FDV to $50K–$300K); recorded
//! call-channel posts arrive as `channel_post` updates through the emulator, recorded
//! Raydium pool creations (and swaps, which are not calls) through the Solana feed
//! server; then prices move and the tracked calls alert, and Alice lists them with
//! /calls. Then Alice deposits 20 BUSD on a local chain (anvil) and buys a weekly
//! subscription with it ([`payments`]). Prints every message the emulator received and a
//! summary.

pub mod chat;
pub mod lottery;
pub mod payments;
pub mod trivia;

/// What `loadtest demo` can play, in the order it plays them.
pub const SECTIONS: &[&str] = &["signals", "payments", "chat", "lottery", "trivia"];

/// Plays the named products (empty: all five), each on a fresh stack, each with a
/// transcript section; logs of every process in a folder per section under `log_dir`.
/// Signals and payments share one run (a deposit buys the signals subscription).
///
/// Errors: a name is not a product, or a section failed (its logs say why).
pub async fn play(products: &[String], log_dir: PathBuf) -> anyhow::Result<()> {
    let wanted: Vec<&str> = match products.is_empty() {
        true => SECTIONS.to_vec(),
        false => products.iter().map(String::as_str).collect(),
    };
    if let Some(unknown) = wanted.iter().find(|w| !SECTIONS.contains(w)) {
        anyhow::bail!("no demo of {unknown:?}: the demos are {}", SECTIONS.join(", "));
    }
    let started = std::time::Instant::now();
    let header = |title: &str| println!("\n################ {title} ################\n");
    if wanted.iter().any(|w| *w == "signals" || *w == "payments") {
        header("Signals and payments");
        run(Some(log_dir.join("signals"))).await?;
    }
    if wanted.contains(&"chat") {
        header("Random chat");
        let s = chat::run(Some(log_dir.join("chat"))).await?;
        print!("{}", chat::transcript(&s));
        println!(
            "\nchat: {} kinds relayed, {} refusals told, an album of {} as one copyMessages, a reply and an edit",
            s.kinds.len(),
            s.refused.len(),
            s.album.len()
        );
    }
    if wanted.contains(&"lottery") {
        header("Lottery");
        let s = lottery::run(lottery::Options {
            log_dir: Some(log_dir.join("lottery")),
            kill9_after_close: false,
            kill9_servers: false,
        })
        .await?;
        println!(
            "\nlottery: round {} drawn, {} payouts, inclusion proof {}, herald-verify {}",
            s.round,
            s.payouts.len(),
            if s.proof_verified { "verified" } else { "NOT verified" },
            if s.verified { "verified" } else { "NOT verified" }
        );
        anyhow::ensure!(s.verified && s.proof_verified, "the verifier refused the draw or the proof");
    }
    if wanted.contains(&"trivia") {
        header("Trivia");
        let s = trivia::run(Some(log_dir.join("trivia"))).await?;
        print!("{}", trivia::transcript(&s));
    }
    println!(
        "\nDemo of {} in {:.0} s; every process's logs under {}",
        wanted.join(", "),
        started.elapsed().as_secs_f64(),
        log_dir.display()
    );
    Ok(())
}

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::emulator::Delivery;
use crate::feed::parse_frames;
use crate::stack::{channel_post, private_text, Stack, StackOptions};

const EXECUTER_POSTS: &str = include_str!("../../fixtures/executer-sol_bot-token-finder_messages.txt");
const CREATE_POOL: &str = include_str!("../../fixtures/create-pool.json");
const INIT_POOL: &str = include_str!("../../fixtures/init.json");
const SWAPS: &str = include_str!("../../fixtures/transactions.json");

/// Demo users: Alice has no filters, Bob wants FDV between $50K and $300K.
pub const ALICE: i64 = 1001;
pub const BOB: i64 = 1002;

/// The recorded call-channel posts: `(channel id, channel title, text, entity URLs)`.
pub fn recorded_posts() -> Vec<(i64, &'static str, String, Vec<&'static str>)> {
    let mut posts: Vec<(i64, &'static str, String, Vec<&'static str>)> = EXECUTER_POSTS
        .split("\n-----")
        .skip(1)
        .map(|block| block.split_once('\n').map(|(_, body)| body.trim().to_string()).unwrap_or_default())
        .filter(|t| !t.is_empty())
        .map(|t| (-1_001_900_000_001, "Bot Token Finder (Executer-Sol)", t, Vec::new()))
        .collect();
    posts.push((
        -1_002_093_384_030,
        "Solana Early Trending",
        "🔥 \u{200e}The Goon New Trending\n💰 MC: $54,726 • 🔝 $60.7K\n💧 Liq: $21.8K".into(),
        vec!["https://t.me/soul_sniper_bot?start=15_AJ37PzYsw6Bn7XscietdaGQbrm3oCNYuphL4iK34pump"],
    ));
    // XTRACK and Large Buys lines without a contract address: chatter, not calls
    posts.push((
        -1_002_134_751_475,
        "Blackhat SOL Alerts",
        "SLIDING did 👉 4x\n💰 MC: $53.8k 👉 $180k".into(),
        Vec::new(),
    ));
    posts.push((
        -1_002_195_249_735,
        "Orion Tracker",
        "💰 E91 ($49.2K) - 10.65 SOL BUY".into(),
        Vec::new(),
    ));
    posts
}

/// Price moves after the calls (the one synthetic input: recorded call posts carry the
/// price at the call, not what came after): #kora from $0.0225 to 2.2x then 5.3x, #GOD
/// from $0.00607998 to 3.3x.
pub fn price_moves() -> Vec<String> {
    let frame = |token: &str, price: f64, n: u64| {
        serde_json::json!({"type": "price", "id": format!("demo-{n}"), "chain": "solana", "token": token, "price_usd": price, "ts_ms": herald_schemas::now_ms() + n})
            .to_string()
    };
    vec![
        frame("8neDcPFwrvRNM9WXHCtHwTcKZrVm6wr4cs4PSN9Hpump", 0.05, 1),
        frame("GQ6mUfsySbXgDRGjewog4XoRWpYNkJ7YtSEYuMjCbonk", 0.02, 2),
        frame("8neDcPFwrvRNM9WXHCtHwTcKZrVm6wr4cs4PSN9Hpump", 0.12, 3),
    ]
}

/// The recorded Solana frames: 5 pool creations, then 10 swaps.
pub fn recorded_solana_frames() -> anyhow::Result<Vec<String>> {
    let mut frames = parse_frames(CREATE_POOL)?;
    frames.extend(parse_frames(INIT_POOL)?);
    frames.extend(parse_frames(SWAPS)?);
    Ok(frames)
}

/// What the demo saw.
pub struct DemoSummary {
    pub deliveries: Vec<Delivery>,
    pub notifications_per_chat: BTreeMap<i64, usize>,
    pub dead_lettered: u64,
    /// Alice's `/balance` reply after the deposit and the purchase.
    pub balance: Delivery,
    pub too_many_requests: u64,
    /// Both processes exited cleanly on SIGTERM.
    pub clean_shutdown: bool,
    /// The command menu the bot set (`setMyCommands`), command names in order.
    pub menu: Vec<String>,
}

pub(crate) fn strip_tags(s: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// Runs the demo and prints what happened.
pub async fn run(log_dir: Option<PathBuf>) -> anyhow::Result<DemoSummary> {
    println!("Starting anvil (a local BNB Smart Chain) with a BUSD token on it...");
    let chain = payments::DemoChain::start().await?;
    println!("Starting nats-server, redis-server, the Bot API emulator, feed servers, pipeline and bot...");
    let mut stack = Stack::start(StackOptions {
        log_dir,
        pipeline_args: chain.pipeline_args(),
        ..Default::default()
    })
    .await?;
    println!("Logs: {}", stack.log_dir.display());

    stack.emulator.push_update(private_text(ALICE, "/start"));
    stack.emulator.push_update(private_text(BOB, "/start"));
    stack
        .wait_for_deliveries(Duration::from_secs(30), |d| {
            [ALICE, BOB].iter().all(|u| d.iter().any(|x| x.chat_id == *u))
        })
        .await?;
    stack.emulator.push_update(private_text(BOB, "/filters fdv 50k 300k"));
    stack
        .wait_for_deliveries(Duration::from_secs(30), |d| d.iter().filter(|x| x.chat_id == BOB).count() >= 2)
        .await?;
    let before = stack.emulator.deliveries().len();

    let posts = recorded_posts();
    println!("Feeding {} recorded call-channel posts as channel_post updates...", posts.len());
    for (i, (chat, title, text, urls)) in posts.iter().enumerate() {
        stack.emulator.push_update(channel_post(*chat, title, 100 + i as i64, text, urls));
    }
    let frames = recorded_solana_frames()?;
    println!(
        "Feeding {} recorded Solana transaction frames through the feed server...",
        frames.len()
    );
    for f in frames {
        stack.solana.publish(f);
    }
    stack.wait_quiet(Duration::from_secs(4), Duration::from_secs(90)).await;
    let prices = price_moves();
    println!("Feeding {} price updates for the called tokens through the feed...", prices.len());
    for frame in prices {
        stack.feed.publish(frame);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    stack.wait_quiet(Duration::from_secs(4), Duration::from_secs(60)).await;
    println!("Alice asks for /calls...");
    stack.emulator.push_update(private_text(ALICE, "/calls"));
    stack
        .wait_for_deliveries(Duration::from_secs(20), |d| d.iter().any(|x| x.text.contains("Your tracked calls")))
        .await?;
    let balance = payments::run(&stack, &chain).await?;
    let deliveries = stack.emulator.deliveries();

    println!("\n=== Messages the Telegram emulator received ===");
    for d in &deliveries {
        let who = match d.chat_id {
            ALICE => "Alice (no filters)",
            BOB => "Bob (FDV $50K–$300K)",
            _ => "other",
        };
        println!("--- #{} to {who}, {}:\n{}", d.seq, d.method, strip_tags(&d.text));
        if let Some(qr) = &d.photo_qr {
            println!("[photo: a QR code reading {qr}]");
        }
    }
    let mut per_chat = BTreeMap::new();
    for d in &deliveries[before..] {
        *per_chat.entry(d.chat_id).or_insert(0) += 1;
    }
    let js = stack.jetstream().await?;
    let dead = js.get_stream("DLQ").await?.info().await?.state.messages;
    let stats = stack.emulator.stats();
    println!("\n=== Summary ===");
    println!(
        "call-channel posts: {}, Solana frames: 15 (5 pool creations, 10 swaps)",
        posts.len()
    );
    for (chat, n) in &per_chat {
        println!("notifications to chat {chat}: {n}");
    }
    println!("dead-lettered: {dead}; 429s answered by the emulator: {}", stats.too_many_requests);
    println!(
        "Alice's balance after the deposit and the purchase: {}",
        strip_tags(&balance.text).lines().next().unwrap_or_default()
    );
    let metrics = stack.pipeline.metrics().await?;
    for line in metrics.lines().filter(|l| l.starts_with("herald_stage_") && (l.contains("_total"))) {
        println!("  {line}");
    }
    let menu: Vec<String> = stack
        .emulator
        .menu()
        .iter()
        .filter_map(|c| c["command"].as_str().map(|c| format!("/{c}")))
        .collect();
    println!("command menu: {}", menu.join(" "));
    let ok = stack.bot.terminate() & stack.pipeline.terminate();
    println!("graceful shutdown: {}", if ok { "clean" } else { "forced" });
    Ok(DemoSummary {
        deliveries,
        notifications_per_chat: per_chat,
        dead_lettered: dead,
        balance,
        too_many_requests: stats.too_many_requests,
        clean_shutdown: ok,
        menu,
    })
}
