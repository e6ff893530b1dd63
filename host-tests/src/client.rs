//! A native HTTP client for Dapr's state API, for tests and benchmarks: plants and reads raw
//! values, and sends hand-made requests, beside the component under test.

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// An answer from the sidecar.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: StatusCode,
    /// Response headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: Bytes,
}

impl Answer {
    /// The body parsed as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The value of a response header (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Dapr's `errorCode`, if the body has one.
    pub fn error_code(&self) -> Option<String> {
        self.json()
            .get("errorCode")
            .and_then(|c| c.as_str())
            .map(str::to_string)
    }
}

/// A pooled keep-alive HTTP/1 client for one sidecar.
#[derive(Clone)]
pub struct DaprHttp {
    endpoint: String,
    token: Option<String>,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl DaprHttp {
    /// A client for the sidecar at `endpoint` (e.g. `http://127.0.0.1:3500`).
    pub fn new(endpoint: &str) -> Self {
        DaprHttp {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            token: None,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// The same client, sending `dapr-api-token: token`.
    pub fn with_token(mut self, token: Option<&str>) -> Self {
        self.token = token.map(str::to_string);
        self
    }

    /// Sends `method path_and_query` with an optional body and extra headers.
    pub async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Answer> {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("{}{}", self.endpoint, path_and_query));
        if let Some(t) = &self.token {
            builder = builder.header("dapr-api-token", t.as_str());
        }
        if body.is_some() {
            builder = builder.header("content-type", "application/json");
        }
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let req = builder.body(Full::new(Bytes::from(body.unwrap_or_default())))?;
        let res = self.client.request(req).await?;
        let (parts, body) = res.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Answer {
            status: parts.status,
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body,
        })
    }

    /// `GET /v1.0/state/{store}/{key}`.
    pub async fn get(&self, store: &str, key: &str) -> anyhow::Result<Answer> {
        self.send(
            Method::GET,
            &format!("/v1.0/state/{store}/{}", encode(key)),
            None,
            &[],
        )
        .await
    }

    /// `POST /v1.0/state/{store}` with `[{key, value}]` (last-write, no etag).
    pub async fn put(
        &self,
        store: &str,
        key: &str,
        value: &serde_json::Value,
    ) -> anyhow::Result<Answer> {
        let body = serde_json::to_vec(&serde_json::json!([{"key": key, "value": value}]))?;
        self.send(
            Method::POST,
            &format!("/v1.0/state/{store}"),
            Some(body),
            &[],
        )
        .await
    }

    /// `DELETE /v1.0/state/{store}/{key}`.
    pub async fn delete(&self, store: &str, key: &str) -> anyhow::Result<Answer> {
        self.send(
            Method::DELETE,
            &format!("/v1.0/state/{store}/{}", encode(key)),
            None,
            &[],
        )
        .await
    }
}

/// Percent-encodes a path segment (everything but RFC 3986 unreserved characters).
pub fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for &b in segment.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
