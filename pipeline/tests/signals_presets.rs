//! Filter presets through the router and the signals inbox, on a real nats-server: an
//! admin adds, edits, lists and removes presets; `/filters` shows them as buttons; a
//! press follows one; a follower gets the preset's edit, a copier (who changed a filter
//! after following) does not; a forged preset name in a callback is refused; a removed
//! preset's followers keep their filters and are told; a redelivered edit rewrites and
//! tells nobody twice (the stage's own effect); the fan-out index (a replica of the
//! users' buckets, as the fan-out stage runs it) follows a preset's edit without a
//! restart.

mod common;

use std::time::Duration;

use common::Desk;
use herald_pipeline::products::signals::fanout::{UserIndex, USER_BUCKETS};
use herald_runtime::replica::Replica;
use herald_runtime::Effect;
use herald_schemas::{subjects, OutboundMessage, SignalsPrefs};

const ADMIN: i64 = 1;
const FOLLOWER: i64 = 21;
const COPIER: i64 = 22;

use common::{message, press};

fn text(m: &OutboundMessage) -> String {
    m.text().unwrap_or_default().to_string()
}

async fn send(desk: &Desk, update: Vec<u8>) -> Vec<OutboundMessage> {
    desk.send_all(update).await
}

async fn prefs(desk: &Desk, env: &common::Env, user: i64) -> SignalsPrefs {
    let _ = desk;
    let kv = env.js.get_key_value(subjects::SIGNALS_USERS_BUCKET).await.unwrap();
    herald_runtime::records::load::<SignalsPrefs>(&kv, user).await.unwrap().unwrap().0
}

fn callback_data(m: &OutboundMessage) -> Vec<String> {
    serde_json::to_value(&m.content).unwrap()["buttons"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row.as_array().cloned().unwrap_or_default())
        .filter_map(|b| b["callback_data"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn followers_get_a_preset_s_edits_copiers_keep_their_own_and_the_index_follows() {
    let env = common::Env::start().await;
    let desk = Desk::open(&env, vec![ADMIN]).await;
    let index = Replica::start(&env.js, &USER_BUCKETS, UserIndex::default(), env.shutdown.clone())
        .await
        .unwrap();
    for (i, u) in [ADMIN, FOLLOWER, COPIER].into_iter().enumerate() {
        send(&desk, message(u, 1 + i as i64, "/start")).await;
    }

    // the admin adds presets; bad ones are refused with the reason
    let added = send(
        &desk,
        message(
            ADMIN,
            10,
            "/admin preset add gems winrate 60; fdv 10k 1m; chains solana | Proven callers, small caps",
        ),
    )
    .await;
    assert!(text(&added[0]).contains("Preset <b>gems</b> added: WR ≥60%"), "{}", text(&added[0]));
    send(&desk, message(ADMIN, 11, "/admin preset add wide gain 50 | Anything that pays")).await;
    let refused = send(&desk, message(ADMIN, 12, "/admin preset add <b>x</b> winrate 60 | y")).await;
    assert!(text(&refused[0]).contains("A preset name is"), "{}", text(&refused[0]));
    let refused = send(&desk, message(ADMIN, 13, "/admin preset add bad winrate 600 | y")).await;
    assert!(text(&refused[0]).contains("between 0 and 100"), "{}", text(&refused[0]));
    let not_admin = send(&desk, message(FOLLOWER, 14, "/admin preset add mine winrate 10 | y")).await;
    assert!(!text(&not_admin[0]).contains("added"), "only admins: {}", text(&not_admin[0]));

    // /filters shows them as buttons; both users press gems and follow it
    let menu = send(&desk, message(FOLLOWER, 20, "/filters")).await;
    let data = callback_data(&menu[0]);
    assert!(
        data.contains(&"f:p:gems".to_string()) && data.contains(&"f:p:wide".to_string()),
        "{data:?}"
    );
    for (u, id) in [(FOLLOWER, 21), (COPIER, 22)] {
        let followed = send(&desk, press(u, id, "f:p:gems")).await;
        assert!(
            text(&followed[0]).contains("Following preset <b>gems</b>"),
            "{}",
            text(&followed[0])
        );
    }
    assert_eq!(prefs(&desk, &env, FOLLOWER).await.preset.as_deref(), Some("gems"));
    assert_eq!(prefs(&desk, &env, FOLLOWER).await.filters.min_win_rate, Some(0.6));
    // the copier changes one filter: the filters are theirs now
    send(&desk, press(COPIER, 23, "f:gain:100")).await;
    let copier = prefs(&desk, &env, COPIER).await;
    assert_eq!(
        (copier.preset, copier.filters.min_win_rate, copier.filters.min_avg_gain_pct),
        (None, Some(0.6), Some(100.0))
    );

    // a forged preset name: refused, nothing changes
    for (id, forged) in [(24, "f:p:nope"), (25, "f:p:<b>x</b>"), (26, "f:p:")] {
        let r = send(&desk, press(FOLLOWER, id, forged)).await;
        assert!(text(&r[0]).contains("⚠️"), "{forged}: {}", text(&r[0]));
    }
    assert_eq!(prefs(&desk, &env, FOLLOWER).await.preset.as_deref(), Some("gems"));

    // the admin edits gems: the follower's filters follow, the copier's do not; the
    // follower is told once, even when the edit is redelivered
    let edit = message(ADMIN, 30, "/admin preset edit gems winrate 80 | Only the best");
    let out = desk.run_raw(edit.clone(), true).await;
    let replies: Vec<OutboundMessage> = out.iter().map(|o| herald_schemas::decode(&o.payload).unwrap()).collect();
    assert!(text(&replies[0]).contains("1 followers updated"), "{}", text(&replies[0]));
    assert_eq!(
        replies.iter().filter(|m| m.chat_id == FOLLOWER).count(),
        1,
        "the follower told once"
    );
    assert_eq!(prefs(&desk, &env, FOLLOWER).await.filters.min_win_rate, Some(0.8));
    assert_eq!(
        prefs(&desk, &env, FOLLOWER).await.filters.min_fdv_usd,
        Some(10_000.0),
        "the rest kept"
    );
    assert_eq!(
        prefs(&desk, &env, COPIER).await.filters.min_win_rate,
        Some(0.6),
        "a copier keeps their own"
    );
    // redelivered: found made, nobody rewritten or told again
    let again = common::drive_effect(&desk.signals, &out_routed(&desk, edit).await).await;
    assert_eq!(again.0, Effect::AlreadyMade);
    assert!(again.1.iter().all(|m| m.chat_id == ADMIN), "no follower told twice: {:?}", again.1);

    // the fan-out index sees the edit without a restart
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let wr = index.read(|i| i.get(FOLLOWER).and_then(|v| v.prefs.as_ref()).and_then(|p| p.filters.min_win_rate));
        if wr == Some(0.8) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the index still has {wr:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // list: descriptions, filters, followers
    let list = text(&send(&desk, message(ADMIN, 40, "/admin preset list")).await[0]);
    assert!(
        list.contains("📌 <b>gems</b> — Only the best · WR ≥80%") && list.contains("· 1 following"),
        "{list}"
    );

    // remove: the follower keeps the filters as their own, and is told
    let removed = send(&desk, message(ADMIN, 50, "/admin preset remove gems")).await;
    assert!(text(&removed[0]).contains("1 followers keep its filters"), "{}", text(&removed[0]));
    let told: Vec<&OutboundMessage> = removed.iter().filter(|m| m.chat_id == FOLLOWER).collect();
    assert_eq!(told.len(), 1);
    assert!(text(told[0]).contains("Preset gems was removed"));
    let after = prefs(&desk, &env, FOLLOWER).await;
    assert_eq!((after.preset, after.filters.min_win_rate), (None, Some(0.8)));
    let menu = send(&desk, message(FOLLOWER, 51, "/filters")).await;
    assert!(!callback_data(&menu[0]).contains(&"f:p:gems".to_string()));
}

/// The routed form of `update` (what the router publishes to the signals inbox).
async fn out_routed(desk: &Desk, update: Vec<u8>) -> herald_runtime::Output {
    let routed = common::drive(&desk.router, "herald.updates.message.1", &update, true).await;
    routed
        .into_iter()
        .find(|o| o.subject.starts_with("herald.cmd.signals."))
        .expect("routed to signals")
}
