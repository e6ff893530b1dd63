//! The state, health and metadata calls of the sidecar's HTTP API, for one state store.

use std::time::Duration;

use super::error::DaprError;
use super::http::{self, Endpoint, Method, Request};
use super::wire::{self, Concurrency, Consistency, Stored, TxOp, Write};
use crate::config::ApiToken;
use crate::json::Reader;

/// Largest state value read: well above what a writer can store through daprd (4 MiB
/// request bodies), so only a store gone wrong trips it.
pub const VALUE_CAP: usize = 64 << 20;
/// Largest answer read for writes, deletes and health checks (error bodies).
const SMALL_CAP: usize = 64 << 10;
/// Largest `/v1.0/metadata` answer read.
const METADATA_CAP: usize = 4 << 20;

/// What the sidecar's `/v1.0/metadata` says about one component.
#[derive(Debug, Clone, Default)]
pub struct ComponentInfo {
    /// Component name.
    pub name: String,
    /// Component type, e.g. `state.redis`.
    pub kind: String,
    /// Features such as `ETAG`, `TRANSACTIONAL`, `TTL`.
    pub capabilities: Vec<String>,
}

/// The components of a `/v1.0/metadata` answer (`{"components": [{"name", "type",
/// "capabilities"}, ...], ...}`), or `None` if it is not that.
fn components(text: &str) -> Option<Vec<ComponentInfo>> {
    let mut r = Reader::new(text);
    let mut out = Vec::new();
    r.object(|r, name| {
        if name != "components" {
            r.value()?;
            return Some(());
        }
        r.array(|r| {
            let mut c = ComponentInfo::default();
            r.object(|r, field| {
                match field {
                    "name" => c.name = r.string()?,
                    "type" => c.kind = r.string()?,
                    "capabilities" => {
                        r.array(|r| {
                            c.capabilities.push(r.string()?);
                            Some(())
                        })?;
                    }
                    _ => {
                        r.value()?;
                    }
                }
                Some(())
            })?;
            out.push(c);
            Some(())
        })
    })?;
    r.end()?;
    Some(out)
}

/// Client for one sidecar and one state store.
#[derive(Debug, Clone)]
pub struct DaprClient {
    endpoint: Endpoint,
    store: String,
    /// `/v1.0/state/{store}`, the store name percent-encoded.
    state_path: String,
    consistency: Consistency,
}

impl DaprClient {
    /// A client for `store` on the sidecar at `base` (e.g. `http://127.0.0.1:3500`).
    pub fn new(
        base: &str,
        store: &str,
        token: Option<ApiToken>,
        timeout: Duration,
        consistency: Consistency,
    ) -> Self {
        DaprClient {
            endpoint: Endpoint::new(base, token, timeout),
            store: store.to_string(),
            state_path: format!("/v1.0/state/{}", encode(store)),
            consistency,
        }
    }

    /// The state store's name.
    pub fn store(&self) -> &str {
        &self.store
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
        if_match: Option<&str>,
        cap: usize,
    ) -> Result<http::Answer, DaprError> {
        http::exchange(
            &self.endpoint,
            Request {
                method,
                path,
                body,
                if_match,
                cap,
            },
        )
        .await
    }

    /// Reads one key. `None` when the key does not exist (Dapr answers 204).
    pub async fn get(&self, key: &str) -> Result<Option<Stored>, DaprError> {
        let path = format!(
            "{}/{}?consistency={}",
            self.state_path,
            encode(key),
            self.consistency.as_str()
        );
        let answer = self.call(Method::Get, &path, None, None, VALUE_CAP).await?;
        match answer.status {
            204 => Ok(None),
            200 => Ok(Some(Stored {
                data: answer.body,
                etag: answer.etag,
            })),
            status => Err(error_from(status, &answer.body)),
        }
    }

    /// Saves one or more keys in one request. Dapr applies a multi-key save key by key.
    pub async fn save(&self, writes: &[Write<'_>]) -> Result<(), DaprError> {
        if writes.is_empty() {
            return Ok(());
        }
        let body = wire::save_body(writes, self.consistency).into_bytes();
        self.expect_done(Method::Post, &self.state_path, Some(&body), None)
            .await
    }

    /// Deletes one key, guarded by `etag` if given. Deleting a missing key succeeds.
    pub async fn delete(&self, key: &str, etag: Option<&str>) -> Result<(), DaprError> {
        let concurrency = if etag.is_some() {
            Concurrency::FirstWrite
        } else {
            Concurrency::LastWrite
        };
        let path = format!(
            "{}/{}?consistency={}&concurrency={}",
            self.state_path,
            encode(key),
            self.consistency.as_str(),
            concurrency.as_str()
        );
        self.expect_done(Method::Delete, &path, None, etag).await
    }

    /// Runs a state transaction. An etag mismatch inside it is reported by Dapr as a 500.
    pub async fn transact(&self, ops: &[TxOp<'_>]) -> Result<(), DaprError> {
        if ops.is_empty() {
            return Ok(());
        }
        let body = wire::transaction_body(ops, self.consistency).into_bytes();
        let path = format!("{}/transaction", self.state_path);
        self.expect_done(Method::Post, &path, Some(&body), None)
            .await
    }

    async fn expect_done(
        &self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
        if_match: Option<&str>,
    ) -> Result<(), DaprError> {
        let answer = self.call(method, path, body, if_match, SMALL_CAP).await?;
        match answer.status {
            200 | 204 => Ok(()),
            status => Err(error_from(status, &answer.body)),
        }
    }

    /// `GET /v1.0/healthz`: Ok when the sidecar reports ready.
    pub async fn healthz(&self) -> Result<(), DaprError> {
        let answer = self
            .call(Method::Get, "/v1.0/healthz", None, None, SMALL_CAP)
            .await?;
        match answer.status {
            200..=299 => Ok(()),
            status => Err(error_from(status, &answer.body)),
        }
    }

    /// `GET /v1.0/metadata`: the components the sidecar has loaded.
    pub async fn components(&self) -> Result<Vec<ComponentInfo>, DaprError> {
        let answer = self
            .call(Method::Get, "/v1.0/metadata", None, None, METADATA_CAP)
            .await?;
        if answer.status != 200 {
            return Err(error_from(answer.status, &answer.body));
        }
        std::str::from_utf8(&answer.body)
            .ok()
            .and_then(components)
            .ok_or_else(|| DaprError::Protocol("the metadata answer is not Dapr's JSON".into()))
    }
}

/// Builds the error for a non-success status from Dapr's error body.
fn error_from(status: u16, body: &[u8]) -> DaprError {
    if status == 401 {
        return DaprError::Unauthorized;
    }
    let (code, message) = wire::error_body(body).unwrap_or_else(|| (String::new(), preview(body)));
    DaprError::Status {
        status,
        code,
        message,
    }
}

/// The start of a non-JSON body, as text, for error messages.
fn preview(body: &[u8]) -> String {
    const MAX: usize = 200;
    String::from_utf8_lossy(body.get(..MAX.min(body.len())).unwrap_or_default()).into_owned()
}

/// Percent-encodes a path segment: everything but RFC 3986 unreserved characters.
///
/// daprd unescapes path parameters with Go's `url.QueryUnescape`, which turns `+` into a
/// space, so `+` must be encoded too; so must `/`, `%`, `?`, `#` and every non-ASCII byte.
pub fn encode(segment: &str) -> String {
    let hex = |n: u8| char::from(if n < 10 { b'0' + n } else { b'A' + n - 10 });
    let mut out = String::with_capacity(segment.len());
    for &b in segment.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(hex(b >> 4));
            out.push(hex(b & 15));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_fully_encoded() {
        assert_eq!(encode("abc-._~XYZ09"), "abc-._~XYZ09");
        assert_eq!(encode("a/b c+d%e?f#g"), "a%2Fb%20c%2Bd%25e%3Ff%23g");
        assert_eq!(encode("a:b||c"), "a%3Ab%7C%7Cc");
        assert_eq!(encode("é"), "%C3%A9");
    }

    #[test]
    fn debug_output_hides_the_token() {
        let client = DaprClient::new(
            "http://127.0.0.1:3500",
            "statestore",
            Some("s3cret-token".into()),
            Duration::from_secs(1),
            Consistency::Eventual,
        );
        let shown = format!("{client:?}");
        assert!(
            shown.contains("statestore") && !shown.contains("s3cret"),
            "{shown}"
        );
    }

    #[test]
    fn metadata_answers() {
        let c = components(
            r#"{"id":"app","components":[{"name":"statestore","type":"state.redis","version":"v1","capabilities":["ETAG","TRANSACTIONAL"]},{"name":"x","type":"pubsub.redis"}],"extended":{}}"#,
        )
        .unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(
            (c[0].name.as_str(), c[0].kind.as_str()),
            ("statestore", "state.redis")
        );
        assert_eq!(c[0].capabilities, ["ETAG", "TRANSACTIONAL"]);
        assert!(c[1].capabilities.is_empty());
        assert_eq!(components(r#"{"components":{}}"#).map(|c| c.len()), None);
        assert_eq!(components(r#"{}"#).map(|c| c.len()), Some(0));
    }

    #[test]
    fn error_bodies_become_typed_errors() {
        let e = error_from(409, br#"{"errorCode":"ERR_STATE_SAVE","message":"etag"}"#);
        assert!(e.is_conflict());
        assert_eq!(error_from(401, b""), DaprError::Unauthorized);
        match error_from(500, b"not json") {
            DaprError::Status { code, message, .. } => {
                assert!(code.is_empty() && message == "not json")
            }
            other => panic!("{other:?}"),
        }
    }
}
