//! The `broadcast_sender` task: every tick, for each broadcast being sent, the next
//! batch of copies into OUTBOUND, then the cursor; and the progress message edited
//! when the counts moved. Any number of pipelines may run it: the cursor moves by
//! compare-and-set, and a batch two of them publish is one set of message ids.

use herald_runtime::Output;
use herald_schemas::{subjects, Content, OutboundMessage, Priority};

use super::store::{Broadcasts, Job, State};
use super::{copy, progress_text, BACKLOG_LIMIT, BATCH};

/// The subject a copy of broadcast `id` reports to (the desk counts it).
pub fn report_subject(id: i64) -> String {
    format!("herald.cmd.desk.report.{id}")
}

/// The copy of `job` for `chat`, under the key that keeps it once.
pub fn copy_for(job: &Job, chat: i64) -> Output {
    let key = format!("bc.{}.{chat}", job.id);
    let m = OutboundMessage::new(
        key.clone(),
        chat,
        copy(job.from_chat, &job.message_ids),
        Priority::Broadcast,
        herald_schemas::now_ms(),
    )
    .reported_to(report_subject(job.id));
    Output {
        subject: subjects::notify(chat),
        msg_id: key,
        payload: herald_schemas::encode(&m),
    }
}

/// One tick: every broadcast being sent moves on by at most one batch (none while the
/// bot's bulk queue holds more than [`BACKLOG_LIMIT`]), and its progress is shown.
///
/// Errors: NATS failed (the next tick goes on from the cursor).
pub async fn tick(js: &herald_runtime::Js, b: &Broadcasts) -> anyhow::Result<()> {
    // a job all published and all answered (as last shown) needs nothing more
    let open = |j: &Job| j.state == State::Sending && !(j.cursor >= j.total && j.shown >= j.total);
    for job in b.jobs().await?.into_iter().filter(open) {
        if job.cursor < job.total && backlog(js).await? < BACKLOG_LIMIT {
            send_batch(js, b, &job).await?;
        }
        show_progress(js, b, job.id).await?;
    }
    Ok(())
}

/// The bot's bulk queue: messages of `bot_notify` not yet delivered or acknowledged (0
/// before the bot made its consumer).
async fn backlog(js: &herald_runtime::Js) -> anyhow::Result<u64> {
    let stream = js.get_stream(subjects::OUTBOUND_STREAM).await?;
    Ok(match stream.consumer_info("bot_notify").await {
        Ok(info) => info.num_pending + info.num_ack_pending as u64,
        Err(_) => 0,
    })
}

async fn send_batch(js: &herald_runtime::Js, b: &Broadcasts, job: &Job) -> anyhow::Result<()> {
    let recipients = b.recipients(job.id).await?;
    let from = job.cursor as usize;
    let batch: Vec<Output> = recipients.iter().skip(from).take(BATCH).map(|chat| copy_for(job, *chat)).collect();
    let next = (from + batch.len()) as u64;
    // stored first, then the cursor: a crash between publishes the batch again under
    // the same ids (dropped as duplicates), never skips it
    herald_runtime::publish_all(js, batch).await?;
    b.transition(job.id, |j| {
        let moved = j.state == State::Sending && j.cursor < next;
        if moved {
            j.cursor = next;
        }
        moved
    })
    .await?;
    Ok(())
}

/// Edits the progress message when the counts changed since it was last shown.
async fn show_progress(js: &herald_runtime::Js, b: &Broadcasts, id: i64) -> anyhow::Result<()> {
    let p = b.progress(id).await?;
    let Some((job, _)) = b.job(id).await? else { return Ok(()) };
    let (Some(message), true) = (job.progress_message, p.done() != job.shown || job.shown == 0) else {
        return Ok(());
    };
    let text = progress_text(&job, &p, herald_schemas::now_ms());
    // keyed by the counts: the same progress is one edit, whoever shows it
    let key = format!("bc.{id}.progress.{}.{}.{}", p.sent, p.blocked, p.failed);
    let edit = OutboundMessage::new(
        key.clone(),
        job.admin_chat,
        Content::edit_text(message, text, Vec::new()),
        Priority::Reply,
        herald_schemas::now_ms(),
    );
    herald_runtime::publish_all(
        js,
        vec![Output {
            subject: subjects::reply(job.admin_chat),
            msg_id: key,
            payload: herald_schemas::encode(&edit),
        }],
    )
    .await?;
    let shown = p.done().max(1);
    b.transition(id, |j| {
        let moved = j.shown < shown;
        if moved {
            j.shown = shown;
        }
        moved
    })
    .await?;
    Ok(())
}
