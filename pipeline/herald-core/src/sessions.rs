//! Per-user sessions: while a user is inside a product (a chat, a game), the router
//! hands that product the user's plain messages. One session per user, in the
//! `herald_sessions` KV bucket (key: user id, value: the product's name).

use async_nats::jetstream::kv;

/// The product whose session `user_id` is in, if any.
///
/// Errors: KV unreachable.
pub async fn current(store: &kv::Store, user_id: i64) -> anyhow::Result<Option<String>> {
    Ok(store
        .get(user_id.to_string())
        .await?
        .and_then(|v| String::from_utf8(v.to_vec()).ok())
        .filter(|p| !p.is_empty()))
}

/// Puts `user_id` in `product`'s session (replacing any other). Idempotent.
///
/// Errors: KV unreachable.
pub async fn enter(store: &kv::Store, user_id: i64, product: &str) -> anyhow::Result<()> {
    store.put(user_id.to_string(), product.as_bytes().to_vec().into()).await?;
    Ok(())
}

/// Ends `user_id`'s session if it is `product`'s (another product's is left alone).
/// Idempotent.
///
/// Errors: KV unreachable.
pub async fn leave(store: &kv::Store, user_id: i64, product: &str) -> anyhow::Result<()> {
    if current(store, user_id).await?.as_deref() == Some(product) {
        store.delete(user_id.to_string()).await?;
    }
    Ok(())
}
