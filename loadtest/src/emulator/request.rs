//! A Bot API request's parameters, however the client sent them: query string, JSON
//! body, `application/x-www-form-urlencoded`, or `multipart/form-data` (how clients
//! upload files, e.g. `sendPhoto`'s `photo`). Later sources override earlier ones, as
//! the Bot API does.

use std::collections::HashMap;

use axum::http::HeaderMap;
use bytes::Bytes;
use serde_json::Value;

/// The parameters (strings unless the body was JSON) and the uploaded files by field name.
#[derive(Debug, Default)]
pub struct Request {
    pub params: Value,
    pub files: HashMap<String, Bytes>,
}

/// Reads the parameters.
///
/// Errors: a multipart body that does not parse (Telegram answers such requests 400).
pub async fn parse(query: HashMap<String, String>, headers: &HeaderMap, body: Bytes) -> Result<Request, String> {
    let mut params: serde_json::Map<String, Value> = query.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    let mut files = HashMap::new();
    let ct = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if ct.starts_with("application/json") {
        if let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(&body) {
            params.extend(m);
        }
    } else if ct.starts_with("application/x-www-form-urlencoded") {
        params.extend(form_urlencoded::parse(&body).map(|(k, v)| (k.into_owned(), Value::String(v.into_owned()))));
    } else if ct.starts_with("multipart/form-data") {
        let boundary = multer::parse_boundary(ct).map_err(|e| format!("multipart boundary: {e}"))?;
        let stream = futures::stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
        let mut form = multer::Multipart::new(stream, boundary);
        while let Some(field) = form.next_field().await.map_err(|e| format!("multipart body: {e}"))? {
            let name = field.name().unwrap_or_default().to_string();
            let is_file = field.file_name().is_some();
            let data = field.bytes().await.map_err(|e| format!("multipart field {name}: {e}"))?;
            if is_file {
                files.insert(name, data);
            } else {
                params.insert(name, Value::String(String::from_utf8_lossy(&data).into_owned()));
            }
        }
    }
    Ok(Request {
        params: Value::Object(params),
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(ct: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("content-type", ct.parse().unwrap());
        h
    }

    #[tokio::test]
    async fn form_and_multipart_bodies_decode() {
        let form = parse(
            HashMap::new(),
            &headers("application/x-www-form-urlencoded"),
            Bytes::from_static(b"chat_id=5&text=hello+w%C3%B6rld"),
        )
        .await
        .unwrap();
        assert_eq!(form.params["text"], "hello wörld");

        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"chat_id\"\r\n\r\n7\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"qr.png\"\r\nContent-Type: image/png\r\n\r\n\x01\x02\r\n\
                    --XyZ--\r\n";
        let multipart = parse(HashMap::new(), &headers("multipart/form-data; boundary=XyZ"), Bytes::from(body))
            .await
            .unwrap();
        assert_eq!(multipart.params["chat_id"], "7");
        assert_eq!(multipart.files["photo"].as_ref(), b"\x01\x02");
        let broken = parse(
            HashMap::new(),
            &headers("multipart/form-data; boundary=XyZ"),
            Bytes::from("--XyZ\r\ngarbage"),
        )
        .await;
        assert!(broken.is_err());
    }
}
