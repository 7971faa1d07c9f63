//! A valid input for each chat stage: the compliance harness feeds these.

use herald_schemas::{Content, DeliveryReport, Outcome};

/// A copy the bot made (the delivery stage's input).
pub fn delivery() -> Vec<u8> {
    let report = DeliveryReport::new("chat:1:1:2", 2, Content::copy(1, 1, None, false), Outcome::Sent { message_ids: vec![5] });
    herald_schemas::encode(&report)
}
