//! Broadcasts through the router and the desk on a real nats-server: `/admin broadcast`
//! as a reply makes a draft (preview and confirmation), Send starts it, the sender
//! publishes each recipient's copy once even when a batch is published again, reports
//! are counted once, an album goes whole (copyMessages), segments choose recipients,
//! cancel stops what is not yet published, and only admins can do any of it.

mod common;

use common::Desk;
use herald_pipeline::core::broadcast::{self, sender, State};
use herald_runtime::Effect;
use herald_schemas::{subjects, Content, DeliveryReport, OutboundMessage, Outcome};

const ADMIN: i64 = 1;

fn update(id: i64, message: serde_json::Value) -> Vec<u8> {
    serde_json::json!({"update_id": id, "message": message}).to_string().into_bytes()
}

fn message(user: i64, id: i64, text: &str) -> serde_json::Value {
    serde_json::json!({"message_id": id, "date": 0, "chat": {"id": user, "type": "private"},
        "from": {"id": user, "is_bot": false, "first_name": "U"}, "text": text})
}

fn photo(user: i64, id: i64, group: Option<&str>) -> serde_json::Value {
    let mut m = serde_json::json!({"message_id": id, "date": 0, "chat": {"id": user, "type": "private"},
        "from": {"id": user, "is_bot": false, "first_name": "U"}, "caption": "<b>news</b>",
        "photo": [{"file_id": "AgAD", "file_unique_id": "u", "width": 90, "height": 90}]});
    if let Some(g) = group {
        m["media_group_id"] = g.into();
    }
    m
}

fn reply_to(mut command: serde_json::Value, original: serde_json::Value) -> serde_json::Value {
    command["reply_to_message"] = original;
    command
}

#[tokio::test]
async fn a_reply_becomes_a_draft_then_each_copy_goes_once() {
    let env = common::Env::start().await;
    let desk = Desk::open(&env, vec![ADMIN]).await;
    for (i, u) in [ADMIN, 11, 12, 13].into_iter().enumerate() {
        desk.send_all(update(i as i64 + 1, message(u, 1, "/start"))).await;
    }
    // not a reply: the usage with the segments; not an admin: unknown
    let usage = desk.send_all(update(10, message(ADMIN, 2, "/admin broadcast"))).await;
    assert!(usage[0].text().unwrap().contains("as a reply"), "{usage:?}");
    let stranger = desk
        .send_all(update(11, reply_to(message(11, 3, "/admin broadcast"), photo(11, 2, None))))
        .await;
    assert!(stranger[0].text().unwrap().contains("Unknown command"), "{stranger:?}");

    // the admin replies to a photo: a preview (the copy) and the confirmation
    let draft = update(20, reply_to(message(ADMIN, 5, "/admin broadcast all"), photo(ADMIN, 4, None)));
    let out = desk.send_all(draft.clone()).await;
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(
        matches!(
            out[0].content,
            Content::CopyMessage {
                from_chat_id: ADMIN,
                message_id: 4,
                ..
            }
        ),
        "{:?}",
        out[0]
    );
    let confirm = out[1].text().unwrap().to_string();
    assert!(confirm.contains("goes to <b>4</b> users"), "{confirm}");
    let (job, _) = desk.ops.broadcasts.job(20).await.unwrap().unwrap();
    assert_eq!((job.state, job.total), (State::Draft, 4));

    // Send pressed (twice: a double tap): sending once
    let press = |id: i64| {
        serde_json::json!({"update_id": id, "callback_query": {"id": format!("q{id}"), "data": "bc:go:20",
            "from": {"id": ADMIN, "is_bot": false, "first_name": "U"},
            "message": {"message_id": 77, "date": 0, "chat": {"id": ADMIN, "type": "private"}}}})
        .to_string()
        .into_bytes()
    };
    let started = desk.send_all(press(21)).await;
    assert!(
        matches!(started[0].content, Content::EditMessageText { message_id: 77, .. }),
        "{started:?}"
    );
    desk.send_all(press(22)).await;
    let (job, _) = desk.ops.broadcasts.job(20).await.unwrap().unwrap();
    assert_eq!((job.state, job.progress_message), (State::Sending, Some(77)));

    // the sender publishes every copy; a second tick and a batch published again store
    // nothing new (the same message ids)
    sender::tick(&env.js, &desk.ops.broadcasts).await.unwrap();
    sender::tick(&env.js, &desk.ops.broadcasts).await.unwrap();
    let copies = herald_runtime::reader::read(&env.js, subjects::OUTBOUND_STREAM, "herald.out.notify.>")
        .await
        .unwrap();
    let chats: Vec<i64> = copies
        .iter()
        .map(|m| herald_schemas::decode::<OutboundMessage>(&m.payload).unwrap().chat_id)
        .collect();
    assert_eq!(chats, [ADMIN, 11, 12, 13], "each recipient once, in order");
    herald_runtime::publish_all(&env.js, vec![sender::copy_for(&job, 12)])
        .await
        .unwrap();
    assert_eq!(env.count(subjects::OUTBOUND_STREAM, "herald.out.notify.>").await, 4);

    // reports: counted once each, redelivered or not
    let report = |chat: i64, outcome: Outcome| {
        let r = DeliveryReport::new(format!("bc.20.{chat}"), chat, Content::copy(ADMIN, 4, None, false), outcome);
        herald_runtime::Output {
            subject: sender::report_subject(20),
            msg_id: format!("report:bc.20.{chat}"),
            payload: herald_schemas::encode(&r),
        }
    };
    for (chat, outcome) in [
        (11, Outcome::Sent { message_ids: vec![9] }),
        (12, Outcome::Blocked),
        (13, Outcome::Rejected { reason: "x".into() }),
    ] {
        let input = report(chat, outcome);
        assert_eq!(common::drive_effect(&desk.ops, &input).await.0, Effect::Made);
        assert_eq!(
            common::drive_effect(&desk.ops, &input).await.0,
            Effect::AlreadyMade,
            "a redelivered report"
        );
    }
    let p = desk.ops.broadcasts.progress(20).await.unwrap();
    assert_eq!((p.sent, p.blocked, p.failed), (1, 1, 1));
    let status = desk.send_all(update(30, message(ADMIN, 8, "/admin broadcast status"))).await;
    assert!(
        status[0].text().unwrap().contains("Sent 1 · blocked 1 · failed 1 · left 1"),
        "{status:?}"
    );
}

#[tokio::test]
async fn an_album_goes_whole_to_its_segment_and_cancel_stops_it() {
    let env = common::Env::start().await;
    let desk = Desk::open(&env, vec![ADMIN]).await;
    for (i, u) in [ADMIN, 21, 22].into_iter().enumerate() {
        desk.send_all(update(i as i64 + 1, message(u, 1, "/start"))).await;
    }
    // the admin sends an album of three: the desk remembers its parts
    for id in [41, 42, 43] {
        desk.run_raw(update(id, photo(ADMIN, id, Some("alb-1"))), true).await;
    }
    assert_eq!(desk.ops.broadcasts.album(ADMIN, "alb-1").await.unwrap(), [41, 42, 43]);
    // a segment no product declares: refused with the list; `unpaid` (payments'): nobody
    // here, everyone is in their trial
    let unknown = desk
        .send_all(update(
            50,
            reply_to(message(ADMIN, 44, "/admin broadcast nobody"), photo(ADMIN, 42, Some("alb-1"))),
        ))
        .await;
    assert!(unknown[0].text().unwrap().contains("No segment nobody"), "{unknown:?}");
    let unpaid = desk
        .send_all(update(
            53,
            reply_to(message(ADMIN, 47, "/admin broadcast unpaid"), photo(ADMIN, 42, Some("alb-1"))),
        ))
        .await;
    assert!(
        unpaid[0].text().unwrap().contains("Nobody to send to in segment unpaid"),
        "{unpaid:?}"
    );
    let out = desk
        .send_all(update(
            51,
            reply_to(message(ADMIN, 45, "/admin broadcast all"), photo(ADMIN, 42, Some("alb-1"))),
        ))
        .await;
    assert!(
        matches!(&out[0].content, Content::CopyMessages { message_ids, .. } if message_ids == &[41, 42, 43]),
        "the whole album, from a reply to any part: {:?}",
        out[0]
    );
    // cancelled before anything was published: nothing goes out
    let cancel = desk.send_all(update(52, message(ADMIN, 46, "/admin broadcast cancel 51"))).await;
    assert!(cancel[0].text().unwrap().contains("cancelled"), "{cancel:?}");
    sender::tick(&env.js, &desk.ops.broadcasts).await.unwrap();
    assert_eq!(env.count(subjects::OUTBOUND_STREAM, "herald.out.notify.>").await, 0);
    let (job, _) = desk.ops.broadcasts.job(51).await.unwrap().unwrap();
    assert_eq!(job.state, broadcast::State::Cancelled);
}
