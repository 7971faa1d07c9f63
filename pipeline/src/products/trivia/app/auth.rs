//! The Mini App's authentication: Telegram's `initData` exchanged for a short-lived
//! JWT, which every API call carries as `Authorization: Bearer <token>`.
//!
//! `initData` is checked exactly as Telegram documents it
//! (core.telegram.org/bots/webapps#validating-data-received-via-the-mini-app): the
//! fields other than `hash`, URL-decoded, sorted by key, joined as `key=value` lines,
//! signed with HMAC-SHA256 under the key HMAC-SHA256("WebAppData", bot token); and
//! `auth_date` must be recent, so stolen data goes stale.

use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The Telegram user `initData` vouches for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppUser {
    pub id: i64,
    #[serde(default)]
    pub first_name: String,
}

/// Why `initData` was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InitDataError {
    #[error("initData has no hash")]
    NoHash,
    #[error("initData's hash does not match: not signed for this bot, or altered")]
    BadHash,
    #[error("initData has no usable auth_date")]
    NoAuthDate,
    #[error("initData is {age_s} s old (at most {max_s} s)")]
    Expired { age_s: u64, max_s: u64 },
    #[error("initData is dated {ahead_s} s in the future (at most {max_s} s of clock skew)")]
    FromTheFuture { ahead_s: u64, max_s: u64 },
    #[error("initData has no user")]
    NoUser,
}

fn hmac(key: &[u8], data: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac
}

/// The data-check-string and hash of raw `initData` (a URL query string).
fn parts(init_data: &str) -> (String, Option<String>) {
    let mut hash = None;
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (k, v) in form_urlencoded::parse(init_data.as_bytes()) {
        if k == "hash" {
            hash = Some(v.into_owned());
        } else {
            pairs.push((k.into_owned(), v.into_owned()));
        }
    }
    pairs.sort();
    let check = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("\n");
    (check, hash)
}

/// Clock skew allowed between Telegram's servers and this one: an `auth_date` further
/// ahead than this is refused, as a stale one is (issue 21: a year ahead was accepted).
pub const MAX_CLOCK_SKEW_S: u64 = 60;

/// Checks raw `initData` for `bot_token` at `now_s` (unix s), accepting an `auth_date`
/// at most `max_age_s` old and at most [`MAX_CLOCK_SKEW_S`] ahead. Returns the user.
///
/// ```
/// use herald_pipeline::products::trivia::app::auth::{sign_init_data, validate_init_data};
/// let data = sign_init_data("42:TOKEN", &[("auth_date", "1000"), ("user", r#"{"id":7,"first_name":"Ann"}"#)]);
/// assert_eq!(validate_init_data(&data, "42:TOKEN", 1_100, 3_600).unwrap().id, 7);
/// assert!(validate_init_data(&data, "43:OTHER", 1_100, 3_600).is_err());
/// ```
///
/// Errors: [`InitDataError`]: no hash, a hash that does not match, no, a stale or a
/// future `auth_date`, no user.
pub fn validate_init_data(init_data: &str, bot_token: &str, now_s: u64, max_age_s: u64) -> Result<AppUser, InitDataError> {
    let (check, hash) = parts(init_data);
    let hash = hash.ok_or(InitDataError::NoHash)?;
    let expected = hex::decode(&hash).map_err(|_| InitDataError::BadHash)?;
    let secret = hmac(b"WebAppData", bot_token.as_bytes()).finalize().into_bytes();
    // constant-time comparison
    hmac(&secret, check.as_bytes()).verify_slice(&expected).map_err(|_| InitDataError::BadHash)?;
    let fields: Vec<(String, String)> = form_urlencoded::parse(init_data.as_bytes()).into_owned().collect();
    let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let auth_date: u64 = field("auth_date").and_then(|d| d.parse().ok()).ok_or(InitDataError::NoAuthDate)?;
    let ahead_s = auth_date.saturating_sub(now_s);
    if ahead_s > MAX_CLOCK_SKEW_S {
        return Err(InitDataError::FromTheFuture {
            ahead_s,
            max_s: MAX_CLOCK_SKEW_S,
        });
    }
    let age_s = now_s.saturating_sub(auth_date);
    if age_s > max_age_s {
        return Err(InitDataError::Expired { age_s, max_s: max_age_s });
    }
    field("user")
        .and_then(|u| serde_json::from_str::<AppUser>(u).ok())
        .ok_or(InitDataError::NoUser)
}

/// Signs `fields` as Telegram would for `bot_token`: raw `initData` with its hash. For
/// tests and the demo, which play Telegram's part.
pub fn sign_init_data(bot_token: &str, fields: &[(&str, &str)]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        ser.append_pair(k, v);
    }
    let unsigned = ser.finish();
    let (check, _) = parts(&unsigned);
    let secret = hmac(b"WebAppData", bot_token.as_bytes()).finalize().into_bytes();
    let hash = hex::encode(hmac(&secret, check.as_bytes()).finalize().into_bytes());
    format!("{unsigned}&hash={hash}")
}

/// A token's claims: the Telegram user (`sub`), their name, issue and expiry times
/// (unix s), and the audience `herald-trivia`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub name: String,
    pub iat: u64,
    pub exp: u64,
    pub aud: String,
}

impl Claims {
    /// The user id in `sub`.
    pub fn user(&self) -> Option<i64> {
        self.sub.parse().ok()
    }
}

/// The audience every token names.
pub const AUDIENCE: &str = "herald-trivia";

/// Issues and checks HS256 tokens.
#[derive(Clone)]
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// How long a token lives, s.
    pub ttl_s: u64,
}

impl Tokens {
    /// Tokens signed with `secret`.
    pub fn new(secret: &[u8], ttl_s: u64) -> Self {
        Tokens {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            ttl_s,
        }
    }

    /// A secret derived from the bot token, so every pipeline of a deployment signs
    /// alike without another setting: HMAC-SHA256("herald-trivia-jwt", bot token).
    pub fn derived_secret(bot_token: &str) -> Vec<u8> {
        hmac(b"herald-trivia-jwt", bot_token.as_bytes()).finalize().into_bytes().to_vec()
    }

    /// A token for `user` issued at `now_s`.
    ///
    /// ```
    /// use herald_pipeline::products::trivia::app::auth::{AppUser, Tokens};
    /// let tokens = Tokens::new(b"secret", 900);
    /// let now = herald_schemas::now_ms() / 1000;
    /// let jwt = tokens.issue(&AppUser { id: 7, first_name: "Ann".into() }, now).unwrap();
    /// assert_eq!(tokens.check(&jwt).unwrap().user(), Some(7));
    /// assert!(Tokens::new(b"other", 900).check(&jwt).is_err());
    /// ```
    ///
    /// Errors: signing failed (it does not with HS256).
    pub fn issue(&self, user: &AppUser, now_s: u64) -> jsonwebtoken::errors::Result<String> {
        let claims = Claims {
            sub: user.id.to_string(),
            name: user.first_name.clone(),
            iat: now_s,
            exp: now_s + self.ttl_s,
            aud: AUDIENCE.into(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// The claims of a valid token: signed with this secret by HS256 (no other
    /// algorithm is accepted), not expired (no leeway), for [`AUDIENCE`].
    ///
    /// Errors: a bad signature, another algorithm, expired, malformed, wrong audience.
    pub fn check(&self, token: &str) -> jsonwebtoken::errors::Result<Claims> {
        let mut v = Validation::new(Algorithm::HS256);
        v.leeway = 0;
        v.set_audience(&[AUDIENCE]);
        v.set_required_spec_claims(&["exp", "sub", "aud"]);
        Ok(jsonwebtoken::decode::<Claims>(token, &self.decoding, &v)?.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Telegram's documented example: the init data and token the Telegram Mini Apps
    /// project publishes for bot 7342037359 (see `pipeline/fixtures/SOURCES.md`).
    const EXAMPLE_TOKEN: &str = "7342037359:AAHI25ES9xCOMPokpYoz-p8XVrZUdygo2J4";
    const EXAMPLE: &str = include_str!("../../../../fixtures/telegram_init_data.txt");

    #[test]
    fn telegrams_published_example_validates() {
        let data = EXAMPLE.trim();
        // signed 2024-12-06 18:28:02 UTC (auth_date 1733509682)
        let user = validate_init_data(data, EXAMPLE_TOKEN, 1_733_509_700, 3_600).unwrap();
        assert_eq!(user.id, 279_058_397);
        assert_eq!(user.first_name, "Vladislav + - ? /", "JSON's \\/ is /");
    }

    #[test]
    fn a_tampered_hash_or_field_is_refused() {
        let data = EXAMPLE.trim();
        let now = 1_733_509_700;
        let last = data.chars().last().unwrap();
        let flipped = format!("{}{}", &data[..data.len() - 1], if last == '0' { '1' } else { '0' });
        assert_eq!(validate_init_data(&flipped, EXAMPLE_TOKEN, now, 3_600), Err(InitDataError::BadHash));
        let other_user = data.replace("279058397", "279058398");
        assert_eq!(validate_init_data(&other_user, EXAMPLE_TOKEN, now, 3_600), Err(InitDataError::BadHash));
        assert_eq!(validate_init_data(data, "7342037359:WRONG", now, 3_600), Err(InitDataError::BadHash));
        let no_hash = data.split("&hash=").next().unwrap();
        assert_eq!(validate_init_data(no_hash, EXAMPLE_TOKEN, now, 3_600), Err(InitDataError::NoHash));
    }

    #[test]
    fn stale_init_data_is_refused() {
        let data = EXAMPLE.trim();
        let later = 1_733_509_682 + 3_601;
        assert_eq!(
            validate_init_data(data, EXAMPLE_TOKEN, later, 3_600),
            Err(InitDataError::Expired { age_s: 3_601, max_s: 3_600 })
        );
    }

    #[test]
    fn init_data_from_the_future_is_refused_beyond_the_skew() {
        // Telegram's published example, checked a year before it was signed
        let data = EXAMPLE.trim();
        let signed = 1_733_509_682;
        assert_eq!(
            validate_init_data(data, EXAMPLE_TOKEN, signed - 365 * 86_400, 3_600),
            Err(InitDataError::FromTheFuture {
                ahead_s: 365 * 86_400,
                max_s: MAX_CLOCK_SKEW_S
            })
        );
        // a clock a little behind Telegram's is fine
        assert!(validate_init_data(data, EXAMPLE_TOKEN, signed - MAX_CLOCK_SKEW_S, 3_600).is_ok());
        assert!(validate_init_data(data, EXAMPLE_TOKEN, signed - MAX_CLOCK_SKEW_S - 1, 3_600).is_err());
    }

    #[test]
    fn expired_forged_and_foreign_tokens_are_refused() {
        let tokens = Tokens::new(b"k", 60);
        let ann = AppUser { id: 1, first_name: "Ann".into() };
        let now = herald_schemas::now_ms() / 1000;
        assert!(tokens.check(&tokens.issue(&ann, now).unwrap()).is_ok());
        // expired: issued long enough ago that exp passed
        assert!(tokens.check(&tokens.issue(&ann, now - 61).unwrap()).is_err());
        // forged: signed with another key, or a payload changed under the old signature
        assert!(tokens.check(&Tokens::new(b"evil", 60).issue(&ann, now).unwrap()).is_err());
        let good = tokens.issue(&ann, now).unwrap();
        let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
        let mut claims: serde_json::Value = serde_json::from_slice(&base64_url(&parts[1])).unwrap();
        claims["sub"] = "2".into();
        parts[1] = base64_url_encode(&serde_json::to_vec(&claims).unwrap());
        assert!(tokens.check(&parts.join(".")).is_err());
        // "alg": "none" is never accepted
        let none = format!("{}.{}.", base64_url_encode(br#"{"alg":"none","typ":"JWT"}"#), parts[1]);
        assert!(tokens.check(&none).is_err());
    }

    fn base64_url(s: &str) -> Vec<u8> {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).unwrap()
    }

    fn base64_url_encode(b: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    }
}
