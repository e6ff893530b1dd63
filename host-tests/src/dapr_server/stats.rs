//! Request counters and a log of what reached the server.

use std::collections::BTreeMap;
use std::sync::Mutex;

use dapr_session_local_store::Route;

/// Counters for one route.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouteStats {
    /// Requests received.
    pub requests: u64,
    /// Request body bytes received.
    pub request_bytes: u64,
    /// Response body bytes sent.
    pub response_bytes: u64,
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Logged {
    /// Which API it was for.
    pub route: Route,
    /// HTTP method.
    pub method: String,
    /// Path, still percent-encoded.
    pub path: String,
    /// Query string, if any.
    pub query: Option<String>,
    /// Headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// Request body.
    pub body: Vec<u8>,
    /// Status answered (0 if the connection was dropped).
    pub status: u16,
}

impl Logged {
    /// The body parsed as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Counters per route plus the request log.
#[derive(Debug, Default)]
pub struct Stats {
    inner: Mutex<(BTreeMap<Route, RouteStats>, Vec<Logged>)>,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Counters by route.
    pub routes: BTreeMap<Route, RouteStats>,
}

impl Snapshot {
    /// Requests over every route.
    pub fn requests(&self) -> u64 {
        self.routes.values().map(|r| r.requests).sum()
    }

    /// Request plus response body bytes over every route.
    pub fn bytes(&self) -> u64 {
        self.routes
            .values()
            .map(|r| r.request_bytes + r.response_bytes)
            .sum()
    }

    /// Counters since `earlier`.
    pub fn since(&self, earlier: &Snapshot) -> Snapshot {
        let mut routes = BTreeMap::new();
        for (route, now) in &self.routes {
            let before = earlier.routes.get(route).copied().unwrap_or_default();
            routes.insert(
                *route,
                RouteStats {
                    requests: now.requests - before.requests,
                    request_bytes: now.request_bytes - before.request_bytes,
                    response_bytes: now.response_bytes - before.response_bytes,
                },
            );
        }
        Snapshot { routes }
    }
}

impl Stats {
    pub(crate) fn record(&self, entry: Logged, response_bytes: u64) {
        if let Ok(mut inner) = self.inner.lock() {
            let counters = inner.0.entry(entry.route).or_default();
            counters.requests += 1;
            counters.request_bytes += entry.body.len() as u64;
            counters.response_bytes += response_bytes;
            inner.1.push(entry);
        }
    }

    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            routes: self.inner.lock().map(|i| i.0.clone()).unwrap_or_default(),
        }
    }

    /// Every request logged so far.
    pub fn log(&self) -> Vec<Logged> {
        self.inner.lock().map(|i| i.1.clone()).unwrap_or_default()
    }

    /// Forgets the log (counters keep counting).
    pub fn clear_log(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.1.clear();
        }
    }
}
