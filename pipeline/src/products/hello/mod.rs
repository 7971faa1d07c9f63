//! Hello: the smallest product, and the proof that a product is one folder and one
//! registry line. `/hello` answers the sender by name (their typed name stays text).
//!
//! It is built only with the `example-product` feature (`cargo test -p herald-pipeline
//! --features example-product --lib products::hello`, which `scripts/test` runs): the
//! folder and `#[cfg(feature = "example-product")] hello` in the registry line are all
//! it took. Its stage is in the compliance harness, its command in `/help` and the menu,
//! its metric described, with no other file touched.
//!
//! ```text
//! herald.cmd.hello.<user> [COMMANDS] ──> hello_inbox ──> herald.out.reply.<chat>
//! ```

use clap::{Args, FromArgMatches};
use futures::future::BoxFuture;
use herald_runtime::metric::Metric;
use herald_runtime::{Decision, MsgMeta, Stage, StageConfig, StageError, StageHandle};
use herald_schemas::{escape_html, subjects, MenuCommand, RoutedUpdate};
use teloxide::utils::command::BotCommands;

use crate::core::commands::menu_of;
use crate::core::product::{sample_command, Ctx, Product, Registration};
use crate::core::reply::Reply;

/// The registry entry.
pub const REGISTRATION: Registration = Registration {
    name: "hello",
    args: HelloArgs::augment_args,
    build: |m| Ok(Some(Box::new(Hello(HelloArgs::from_arg_matches(m)?)))),
    requires: &[],
    operator: None,
};

/// Hello's flags (`pipeline run`).
#[derive(clap::Args, Debug, Clone)]
pub struct HelloArgs {
    /// The greeting's first word.
    #[arg(long, env = "HERALD_HELLO_GREETING", default_value = "Hello")]
    pub hello_greeting: String,
}

/// Hello's commands.
#[derive(BotCommands, Debug, Clone, PartialEq)]
#[command(rename_rule = "lowercase")]
pub enum HelloCommand {
    #[command(description = "say hello")]
    Hello,
}

/// Greetings sent.
pub const GREETINGS: Metric = Metric::counter("herald_hello_greetings_total", "Greetings sent");

/// The product, configured.
pub struct Hello(pub HelloArgs);

impl Product for Hello {
    fn name(&self) -> &'static str {
        "hello"
    }

    fn commands(&self) -> Vec<MenuCommand> {
        menu_of::<HelloCommand>()
    }

    fn consumers(&self) -> Vec<StageConfig> {
        vec![consumer()]
    }

    fn metrics(&self) -> &'static [Metric] {
        &[GREETINGS]
    }

    fn start<'a>(&'a self, ctx: &'a mut Ctx) -> BoxFuture<'a, anyhow::Result<Vec<StageHandle>>> {
        Box::pin(async move {
            let stage = HelloInbox {
                greeting: self.0.hello_greeting.clone(),
            };
            let handle = StageHandle::new(stage, ctx.configure(consumer()));
            Ok(vec![handle.with_sample(subjects::routed("hello", 1), sample_command("/hello"))])
        })
    }
}

fn consumer() -> StageConfig {
    StageConfig {
        in_order_per_sender: true,
        ..StageConfig::new(subjects::COMMANDS_STREAM, "hello_inbox", vec![subjects::routed_all("hello")])
    }
}

/// The stage: a `/hello` in, a greeting out.
pub struct HelloInbox {
    pub greeting: String,
}

impl Stage for HelloInbox {
    const NAME: &'static str = "hello_inbox";
    type Input = RoutedUpdate;
    type Commit = ();
    type Effect = std::convert::Infallible;

    fn decode(&self, payload: &[u8]) -> Result<RoutedUpdate, String> {
        herald_schemas::decode(payload).map_err(|e| e.to_string())
    }

    async fn decide(&self, routed: RoutedUpdate, _meta: &MsgMeta) -> Result<Decision<()>, StageError> {
        let Some(chat_id) = routed.chat_id else {
            return Err(StageError::Permanent("routed update without a chat".into()));
        };
        let name = routed.update.pointer("/message/from/first_name").and_then(|n| n.as_str()).unwrap_or("there");
        metrics::counter!(GREETINGS.name).increment(1);
        let text = format!("👋 {}, {}!", escape_html(&self.greeting), escape_html(name));
        Ok(Decision::Forward {
            outputs: vec![Reply::plain(text).output(routed.update_id, chat_id, None)],
            commit: (),
        })
    }

    async fn commit(&self, _: ()) -> Result<(), StageError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::compose;

    #[test]
    fn the_registry_line_is_all_it_took() {
        let all = compose::all_products();
        let hello = all.iter().find(|p| p.name() == "hello").expect("in the registry");
        assert!(compose::all_consumers().iter().any(|c| c.durable == "hello_inbox"));
        assert!(compose::metrics_of(&all).iter().any(|m| m.name == GREETINGS.name));
        let menu: Vec<String> = hello.commands().into_iter().map(|c| c.command).collect();
        assert_eq!(menu, ["hello"]);
        // and the router takes it with the other products, without a conflict
        crate::core::router::Routes::new(&all).expect("no conflict with another product");
    }

    #[tokio::test]
    async fn its_stage_passes_the_compliance_harness() {
        let metrics = herald_runtime::telemetry::install_metrics();
        let nats = herald_testkit::LocalNats::start().expect("nats-server");
        let js = compose::connect(&nats.servers_args()).await.unwrap();
        compose::setup_all(&js, false, herald_runtime::setup::Replicas::Existing).await.unwrap();
        let hello = compose::all_products().into_iter().find(|p| p.name() == "hello").unwrap();
        let redis = herald_runtime::config::RedisArgs {
            redis_url: "redis://127.0.0.1:1".into(),
        };
        let mut ctx = Ctx::new(nats.servers_args(), redis, js.clone(), tokio_util::sync::CancellationToken::new());
        let stages = hello.start(&mut ctx).await.unwrap();
        let render = move || metrics.render();
        let reports = herald_testkit::compliance::check_all(&js, &render, stages).await;
        assert_eq!(reports.len(), 1);
    }

    #[tokio::test]
    async fn a_typed_name_stays_text() {
        let stage = HelloInbox { greeting: "Hello".into() };
        let mut routed: RoutedUpdate = herald_schemas::decode(&sample_command("/hello")).unwrap();
        routed.update["message"]["from"]["first_name"] = "<b>Eve</b>".into();
        let meta = MsgMeta {
            subject: subjects::routed("hello", 1),
            stream_sequence: 1,
            delivered: 1,
            published_ms: 0,
        };
        let Decision::Forward { outputs, .. } = stage.decide(routed, &meta).await.unwrap() else {
            panic!("a greeting");
        };
        let out: herald_schemas::OutboundMessage = herald_schemas::decode(&outputs[0].payload).unwrap();
        let text = format!("{:?}", out.content);
        assert!(text.contains("&lt;b&gt;Eve&lt;/b&gt;"), "{text}");
    }
}
