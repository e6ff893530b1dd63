//! Which part of Dapr's API a request is for, and decoding of its path and query.

use std::collections::HashMap;

use http::Method;

/// Which part of Dapr's API a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Route {
    /// `GET /v1.0/state/{store}/{key}`.
    Get,
    /// `POST /v1.0/state/{store}`.
    Save,
    /// `DELETE /v1.0/state/{store}/{key}`.
    Delete,
    /// `POST /v1.0/state/{store}/bulk`.
    BulkGet,
    /// `POST /v1.0/state/{store}/transaction`.
    Transaction,
    /// `GET /v1.0/healthz` and `/v1.0/healthz/outbound`.
    Healthz,
    /// `GET /v1.0/metadata`.
    Metadata,
    /// Anything else.
    Other,
}

/// Which route a request is for, and its path parameters (decoded).
pub(crate) fn route(method: &Method, path: &str) -> (Route, Vec<String>) {
    let segments: Vec<&str> = path.split('/').collect();
    let params = |from: usize| -> Vec<String> {
        segments
            .iter()
            .skip(from)
            .map(|s| query_unescape(s))
            .collect()
    };
    match (method, segments.as_slice()) {
        (&Method::GET, ["", "v1.0", "healthz"] | ["", "v1.0", "healthz", "outbound"]) => {
            (Route::Healthz, Vec::new())
        }
        (&Method::GET, ["", "v1.0", "metadata"]) => (Route::Metadata, Vec::new()),
        (&Method::POST | &Method::PUT, ["", "v1.0", "state", _]) => (Route::Save, params(3)),
        (&Method::POST | &Method::PUT, ["", "v1.0", "state", _, "bulk"]) => {
            (Route::BulkGet, params(3))
        }
        (&Method::POST | &Method::PUT, ["", "v1.0", "state", _, "transaction"]) => {
            (Route::Transaction, params(3))
        }
        (&Method::GET, ["", "v1.0", "state", _, _]) => (Route::Get, params(3)),
        (&Method::DELETE, ["", "v1.0", "state", _, _]) => (Route::Delete, params(3)),
        _ => (Route::Other, Vec::new()),
    }
}

/// Go's `url.QueryUnescape`, which daprd applies to path parameters: `+` is a space.
fn query_unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(v) = hex {
                    out.push(v);
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (query_unescape(k) == name).then(|| query_unescape(v))
    })
}

pub(crate) fn query_metadata(query: Option<&str>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    if let Some(q) = query {
        for pair in q.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if let Some(name) = query_unescape(k).strip_prefix("metadata.") {
                out.entry(name.to_string())
                    .or_insert_with(|| query_unescape(v));
            }
        }
    }
    out
}
