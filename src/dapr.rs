//! A small client for the Dapr sidecar's HTTP state API (`/v1.0/state`, `/v1.0/healthz`,
//! `/v1.0/metadata`), over `wasi:http` through wstd.
//!
//! It speaks Dapr's wire format exactly as daprd implements it: a missing key is `204`,
//! the `ETag` header is unquoted, save bodies are JSON arrays, values are raw JSON, and errors
//! are `{"errorCode", "message"}` objects. It knows nothing about sessions.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use wstd::future::FutureExt as _;
use wstd::http::error::ErrorCode;
use wstd::http::{Body, Client, Method, Request, Response, StatusCode};

use crate::config::ApiToken;

/// Consistency level Dapr passes to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// Dapr's `eventual`.
    Eventual,
    /// Dapr's `strong`.
    Strong,
}

impl Consistency {
    /// The value Dapr expects on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Consistency::Eventual => "eventual",
            Consistency::Strong => "strong",
        }
    }
}

/// Dapr's optimistic-concurrency mode for a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concurrency {
    /// Reject the write unless the etag matches (or, without an etag, unless the key is absent).
    FirstWrite,
    /// Overwrite unconditionally.
    LastWrite,
}

impl Concurrency {
    fn as_str(self) -> &'static str {
        match self {
            Concurrency::FirstWrite => "first-write",
            Concurrency::LastWrite => "last-write",
        }
    }
}

/// Failure of one request to the sidecar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DaprError {
    /// The request did not complete within the timeout.
    Timeout,
    /// The sidecar answered 401: wrong or missing API token.
    Unauthorized,
    /// The sidecar could not be reached (refused, reset, DNS, ...).
    Transport(String),
    /// The sidecar answered, but not in Dapr's format.
    Protocol(String),
    /// The sidecar answered with an error status.
    Status {
        /// HTTP status.
        status: u16,
        /// Dapr `errorCode`, empty if the body had none.
        code: String,
        /// Dapr `message`, or the start of the body.
        message: String,
    },
}

impl DaprError {
    /// The HTTP status, if the sidecar answered with an error status.
    pub fn status(&self) -> Option<u16> {
        match self {
            DaprError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True when the outcome of a write is unknown: the request may or may not have been applied.
    pub fn is_ambiguous(&self) -> bool {
        matches!(
            self,
            DaprError::Timeout | DaprError::Transport(_) | DaprError::Protocol(_)
        )
    }
}

/// A stored value and its etag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The bytes the sidecar returned (normally JSON).
    pub data: Vec<u8>,
    /// The etag, if the store returned one.
    pub etag: Option<String>,
}

/// One item of a save or an upsert.
#[derive(Debug, Clone)]
pub struct Write<'a> {
    /// State key.
    pub key: &'a str,
    /// JSON value to store.
    pub value: &'a RawValue,
    /// Etag the current value must have; `None` means "no etag".
    pub etag: Option<&'a str>,
    /// Concurrency mode.
    pub concurrency: Concurrency,
}

/// One operation of a state transaction.
#[derive(Debug, Clone)]
pub enum TxOp<'a> {
    /// Insert or replace a key.
    Upsert(Write<'a>),
    /// Delete a key, guarded by an etag if given.
    Delete {
        /// State key.
        key: &'a str,
        /// Etag the current value must have.
        etag: Option<&'a str>,
    },
}

/// What the sidecar's `/v1.0/metadata` says about one component.
#[derive(Debug, Clone, Deserialize)]
pub struct ComponentInfo {
    /// Component name.
    pub name: String,
    /// Component type, e.g. `state.redis`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Features such as `ETAG`, `TRANSACTIONAL`, `TTL`.
    #[serde(default)]
    pub capabilities: Vec<String>,
}

#[derive(Deserialize)]
struct MetadataResponse {
    #[serde(default)]
    components: Vec<ComponentInfo>,
}

/// Client for one sidecar and one state store.
#[derive(Debug, Clone)]
pub struct DaprClient {
    base: String,
    store: String,
    token: Option<ApiToken>,
    timeout: Duration,
    consistency: Consistency,
    ttl_seconds: Option<u32>,
    client: Client,
}

#[derive(Serialize)]
struct WireOptions {
    concurrency: &'static str,
    consistency: &'static str,
}

#[derive(Serialize)]
struct WireMetadata {
    #[serde(rename = "ttlInSeconds")]
    ttl_in_seconds: String,
}

#[derive(Serialize)]
struct WireSave<'a> {
    key: &'a str,
    value: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    etag: Option<&'a str>,
    options: WireOptions,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<WireMetadata>,
}

#[derive(Serialize)]
struct WireDelete<'a> {
    key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    etag: Option<&'a str>,
    options: WireOptions,
}

#[derive(Serialize)]
#[serde(tag = "operation", content = "request", rename_all = "lowercase")]
enum WireTxOp<'a> {
    Upsert(WireSave<'a>),
    Delete(WireDelete<'a>),
}

#[derive(Serialize)]
struct WireTransaction<'a> {
    operations: Vec<WireTxOp<'a>>,
}

#[derive(Serialize)]
struct WireBulkGet<'a> {
    keys: &'a [String],
    parallelism: u32,
}

#[derive(Deserialize)]
struct WireBulkItem {
    key: String,
    #[serde(default)]
    data: Option<Box<RawValue>>,
    #[serde(default)]
    etag: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct WireError {
    #[serde(rename = "errorCode", default)]
    error_code: String,
    #[serde(default)]
    message: String,
}

impl DaprClient {
    /// A client for `store` on the sidecar at `base` (e.g. `http://127.0.0.1:3500`).
    pub fn new(
        base: &str,
        store: &str,
        token: Option<ApiToken>,
        timeout: Duration,
        consistency: Consistency,
        ttl_seconds: Option<u32>,
    ) -> Self {
        DaprClient {
            base: base.trim_end_matches('/').to_string(),
            store: store.to_string(),
            token,
            timeout,
            consistency,
            ttl_seconds,
            client: Client::new(),
        }
    }

    /// The state store's name.
    pub fn store(&self) -> &str {
        &self.store
    }

    fn state_url(&self, suffix: &str) -> String {
        format!("{}/v1.0/state/{}{}", self.base, encode(&self.store), suffix)
    }

    fn options(&self, concurrency: Concurrency) -> WireOptions {
        WireOptions {
            concurrency: concurrency.as_str(),
            consistency: self.consistency.as_str(),
        }
    }

    fn ttl(&self) -> Option<WireMetadata> {
        self.ttl_seconds.map(|t| WireMetadata {
            ttl_in_seconds: t.to_string(),
        })
    }

    fn wire_save<'a>(&self, w: &Write<'a>) -> WireSave<'a> {
        WireSave {
            key: w.key,
            value: w.value,
            etag: w.etag.filter(|e| !e.is_empty()),
            options: self.options(w.concurrency),
            metadata: self.ttl(),
        }
    }

    /// Reads one key. `None` when the key does not exist (Dapr answers 204).
    pub async fn get(&self, key: &str) -> Result<Option<Stored>, DaprError> {
        let url = format!(
            "{}?consistency={}",
            self.state_url(&format!("/{}", encode(key))),
            self.consistency.as_str()
        );
        let (status, etag, body) = self.send(Method::GET, &url, None).await?;
        match status {
            StatusCode::NO_CONTENT => Ok(None),
            StatusCode::OK => Ok(Some(Stored { data: body, etag })),
            _ => Err(error_from(status, &body)),
        }
    }

    /// Reads many keys in one request. Keys that do not exist are absent from the map.
    pub async fn bulk_get(&self, keys: &[String]) -> Result<HashMap<String, Stored>, DaprError> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let body = to_json(&WireBulkGet {
            keys,
            parallelism: 0,
        })?;
        let url = self.state_url("/bulk");
        let (status, _, body) = self.send(Method::POST, &url, Some(body)).await?;
        if status != StatusCode::OK {
            return Err(error_from(status, &body));
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            // daprd answers 200 with no body when a value is not JSON (its encoder fails on
            // it): read the keys one by one, so one unreadable value hides no other.
            let mut out = HashMap::new();
            for chunk in keys.chunks(64) {
                let got =
                    crate::join::try_join_all(chunk.iter().map(|k| self.get(k)).collect()).await?;
                out.extend(
                    chunk
                        .iter()
                        .zip(got)
                        .filter_map(|(k, v)| v.map(|v| (k.clone(), v))),
                );
            }
            return Ok(out);
        }
        let items: Vec<WireBulkItem> = serde_json::from_slice(&body).map_err(|e| {
            DaprError::Protocol(format!("bulk get answer is not a JSON array of items: {e}"))
        })?;
        let mut out = HashMap::with_capacity(items.len());
        for item in items {
            if let Some(err) = item.error {
                return Err(DaprError::Status {
                    status: 500,
                    code: "ERR_STATE_BULK_GET".into(),
                    message: format!("bulk get of {}: {err}", item.key),
                });
            }
            if let Some(data) = item.data {
                out.insert(
                    item.key,
                    Stored {
                        data: data.get().as_bytes().to_vec(),
                        etag: item.etag,
                    },
                );
            }
        }
        Ok(out)
    }

    /// Saves one or more keys in one request. Dapr applies a multi-key save key by key.
    pub async fn save(&self, writes: &[Write<'_>]) -> Result<(), DaprError> {
        if writes.is_empty() {
            return Ok(());
        }
        let wire: Vec<WireSave<'_>> = writes.iter().map(|w| self.wire_save(w)).collect();
        let body = to_json(&wire)?;
        let url = self.state_url("");
        let (status, _, body) = self.send(Method::POST, &url, Some(body)).await?;
        match status {
            StatusCode::NO_CONTENT | StatusCode::OK => Ok(()),
            _ => Err(error_from(status, &body)),
        }
    }

    /// Deletes one key, guarded by `etag` if given. Deleting a missing key succeeds.
    pub async fn delete(&self, key: &str, etag: Option<&str>) -> Result<(), DaprError> {
        let concurrency = if etag.is_some() {
            Concurrency::FirstWrite
        } else {
            Concurrency::LastWrite
        };
        let url = format!(
            "{}?consistency={}&concurrency={}",
            self.state_url(&format!("/{}", encode(key))),
            self.consistency.as_str(),
            concurrency.as_str()
        );
        let (status, _, body) = self.send_with_etag(Method::DELETE, &url, etag).await?;
        match status {
            StatusCode::NO_CONTENT | StatusCode::OK => Ok(()),
            _ => Err(error_from(status, &body)),
        }
    }

    /// Runs a state transaction. An etag mismatch inside it is reported by Dapr as a 500.
    pub async fn transact(&self, ops: &[TxOp<'_>]) -> Result<(), DaprError> {
        if ops.is_empty() {
            return Ok(());
        }
        let operations = ops
            .iter()
            .map(|op| match op {
                TxOp::Upsert(w) => WireTxOp::Upsert(self.wire_save(w)),
                TxOp::Delete { key, etag } => WireTxOp::Delete(WireDelete {
                    key,
                    etag: etag.filter(|e| !e.is_empty()),
                    options: self.options(if etag.is_some() {
                        Concurrency::FirstWrite
                    } else {
                        Concurrency::LastWrite
                    }),
                }),
            })
            .collect();
        let body = to_json(&WireTransaction { operations })?;
        let url = self.state_url("/transaction");
        let (status, _, body) = self.send(Method::POST, &url, Some(body)).await?;
        match status {
            StatusCode::NO_CONTENT | StatusCode::OK => Ok(()),
            _ => Err(error_from(status, &body)),
        }
    }

    /// `GET /v1.0/healthz`: Ok when the sidecar reports ready.
    pub async fn healthz(&self) -> Result<(), DaprError> {
        let url = format!("{}/v1.0/healthz", self.base);
        let (status, _, body) = self.send(Method::GET, &url, None).await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(error_from(status, &body))
        }
    }

    /// `GET /v1.0/metadata`: the components the sidecar has loaded.
    pub async fn components(&self) -> Result<Vec<ComponentInfo>, DaprError> {
        let url = format!("{}/v1.0/metadata", self.base);
        let (status, _, body) = self.send(Method::GET, &url, None).await?;
        if status != StatusCode::OK {
            return Err(error_from(status, &body));
        }
        let meta: MetadataResponse = serde_json::from_slice(&body)
            .map_err(|e| DaprError::Protocol(format!("metadata answer is not Dapr's JSON: {e}")))?;
        Ok(meta.components)
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Option<String>, Vec<u8>), DaprError> {
        self.exchange(method, url, body, None).await
    }

    async fn send_with_etag(
        &self,
        method: Method,
        url: &str,
        etag: Option<&str>,
    ) -> Result<(StatusCode, Option<String>, Vec<u8>), DaprError> {
        self.exchange(method, url, None, etag).await
    }

    /// One request. Boxed, so that the HTTP state machine exists once in the binary rather
    /// than inlined into every caller (the component's size matters to embedders).
    fn exchange<'a>(
        &'a self,
        method: Method,
        url: &'a str,
        body: Option<Vec<u8>>,
        if_match: Option<&'a str>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Exchanged> + 'a>> {
        Box::pin(self.exchange_inner(method, url, body, if_match))
    }

    async fn exchange_inner(
        &self,
        method: Method,
        url: &str,
        body: Option<Vec<u8>>,
        if_match: Option<&str>,
    ) -> Exchanged {
        let mut builder = Request::builder().method(method).uri(url);
        if let Some(token) = &self.token {
            builder = builder.header("dapr-api-token", token.as_str());
        }
        if let Some(etag) = if_match {
            builder = builder.header("if-match", etag);
        }
        let request = match body {
            Some(bytes) => builder
                .header("content-type", "application/json")
                .body(Body::from(bytes)),
            // Not `Body::empty()`: that writes a zero-length chunk to the request body
            // stream, which fails ("connection reset") if the host has already finished the
            // bodiless request. A boxed empty body only finishes the stream.
            None => builder.body(Body::from_http_body(
                http_body_util::Empty::<bytes::Bytes>::new(),
            )),
        }
        .map_err(|e| DaprError::Protocol(format!("cannot build request: {e}")))?;

        let exchange = async {
            let response: Response<Body> =
                self.client.send(request).await.map_err(transport_error)?;
            let status = response.status();
            let etag = response
                .headers()
                .get("etag")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let mut body = response.into_body();
            let bytes = body.contents().await.map_err(transport_error)?.to_vec();
            Ok((status, etag, bytes))
        };
        match exchange
            .timeout(wstd::time::Duration::from(self.timeout))
            .await
        {
            Ok(result) => {
                let (status, etag, bytes) = result?;
                if status == StatusCode::UNAUTHORIZED {
                    return Err(DaprError::Unauthorized);
                }
                Ok((status, etag, bytes))
            }
            Err(_) => Err(DaprError::Timeout),
        }
    }
}

/// Status, etag and body of an answer.
type Exchanged = Result<(StatusCode, Option<String>, Vec<u8>), DaprError>;

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, DaprError> {
    serde_json::to_vec(value)
        .map_err(|e| DaprError::Protocol(format!("cannot encode request: {e}")))
}

fn transport_error(e: wstd::http::Error) -> DaprError {
    if let Some(code) = e.downcast_ref::<ErrorCode>() {
        let what = match code {
            ErrorCode::ConnectionTimeout
            | ErrorCode::ConnectionReadTimeout
            | ErrorCode::ConnectionWriteTimeout => return DaprError::Timeout,
            ErrorCode::DnsTimeout | ErrorCode::DnsError(_) => {
                "the sidecar's host name does not resolve"
            }
            ErrorCode::DestinationNotFound | ErrorCode::DestinationUnavailable => {
                "the sidecar's address is unreachable"
            }
            ErrorCode::ConnectionRefused => "connection refused",
            ErrorCode::ConnectionTerminated => "connection terminated",
            ErrorCode::HttpProtocolError => "HTTP protocol error",
            ErrorCode::HttpResponseIncomplete => "the response was cut short",
            ErrorCode::HttpRequestDenied => {
                "the host denied the outgoing request (check its allowed outbound hosts)"
            }
            ErrorCode::HttpRequestUriInvalid => "invalid request URI",
            _ => "HTTP request failed",
        };
        return DaprError::Transport(what.to_string());
    }
    DaprError::Transport(format!("{e:#}"))
}

/// Builds the error for a non-success status from Dapr's error body.
fn error_from(status: StatusCode, body: &[u8]) -> DaprError {
    if status == StatusCode::UNAUTHORIZED {
        return DaprError::Unauthorized;
    }
    let (code, message) = match serde_json::from_slice::<WireError>(body) {
        Ok(e) => (e.error_code, e.message),
        Err(_) => (String::new(), preview(body)),
    };
    DaprError::Status {
        status: status.as_u16(),
        code,
        message,
    }
}

/// The start of a non-JSON body, as text, for error messages.
fn preview(body: &[u8]) -> String {
    const MAX: usize = 200;
    let text = String::from_utf8_lossy(body.get(..MAX.min(body.len())).unwrap_or_default());
    text.into_owned()
}

/// Percent-encodes a path segment: everything but RFC 3986 unreserved characters.
///
/// daprd unescapes path parameters with Go's `url.QueryUnescape`, which turns `+` into a
/// space, so `+` must be encoded too; so must `/`, `%`, `?`, `#` and every non-ASCII byte.
pub fn encode(segment: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(segment.len());
    for &b in segment.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::encode;

    #[test]
    fn path_segments_are_fully_encoded() {
        assert_eq!(encode("abc-._~XYZ09"), "abc-._~XYZ09");
        assert_eq!(encode("a/b c+d%e?f#g"), "a%2Fb%20c%2Bd%25e%3Ff%23g");
        assert_eq!(encode("a:b||c"), "a%3Ab%7C%7Cc");
        assert_eq!(encode("é"), "%C3%A9");
    }

    #[test]
    fn debug_output_hides_the_token() {
        let client = super::DaprClient::new(
            "http://127.0.0.1:3500",
            "statestore",
            Some("s3cret-token".into()),
            std::time::Duration::from_secs(1),
            super::Consistency::Eventual,
            None,
        );
        let shown = format!("{client:?}");
        assert!(
            shown.contains("statestore") && !shown.contains("s3cret"),
            "{shown}"
        );
    }
}
