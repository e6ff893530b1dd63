//! Fault injection: rules that make the server misbehave for matching requests.

use std::sync::Mutex;
use std::time::Duration;

pub use dapr_session_local_store::Route;

/// What a fault does to a matching request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Answer with this status and a Dapr error body, without applying the request.
    Status(u16, &'static str),
    /// Answer `409 ERR_STATE_SAVE` (an etag mismatch) without applying the request.
    Conflict,
    /// Wait this long, then handle the request normally (applied even if the client has
    /// given up by then, as a sidecar may).
    Delay(Duration),
    /// Never answer (the client's timeout must fire).
    Hang,
    /// Close the connection without answering, without applying the request.
    Reset,
    /// Apply the request, then close the connection without answering.
    ResetAfterApply,
    /// Apply the request, then send a response whose body is cut short.
    TruncateBody,
}

/// A fault rule: `action` for the next `times` requests to `route` whose key contains `key`.
#[derive(Debug, Clone)]
pub struct Fault {
    /// Route the rule applies to; `None` for every route.
    pub route: Option<Route>,
    /// Substring the request path or body must contain.
    pub contains: Option<String>,
    /// How many matching requests it lets through, untouched, before it applies.
    pub skip: u32,
    /// How many matching requests it affects.
    pub times: u32,
    /// What it does.
    pub action: Action,
}

impl Fault {
    /// A fault on every request of `route`, once.
    pub fn on(route: Route, action: Action) -> Self {
        Fault {
            route: Some(route),
            contains: None,
            skip: 0,
            times: 1,
            action,
        }
    }

    /// A fault on every request, whatever its route, once.
    pub fn any(action: Action) -> Self {
        Fault {
            route: None,
            ..Fault::on(Route::Other, action)
        }
    }

    /// Lets the first `n` matching requests through before it applies.
    pub fn after(mut self, n: u32) -> Self {
        self.skip = n;
        self
    }

    /// Applies to this many requests.
    pub fn times(mut self, n: u32) -> Self {
        self.times = n;
        self
    }

    /// Applies only to requests whose path or body contains `needle`.
    pub fn containing(mut self, needle: impl Into<String>) -> Self {
        self.contains = Some(needle.into());
        self
    }
}

/// The active fault rules of a server.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<Vec<Fault>>,
}

impl Faults {
    /// Adds a rule; rules are tried in the order they were added.
    pub fn add(&self, fault: Fault) {
        if let Ok(mut rules) = self.rules.lock() {
            rules.push(fault);
        }
    }

    /// Removes every rule.
    pub fn clear(&self) {
        if let Ok(mut rules) = self.rules.lock() {
            rules.clear();
        }
    }

    /// Rules not yet used up.
    pub fn pending(&self) -> usize {
        self.rules.lock().map(|r| r.len()).unwrap_or(0)
    }

    /// The action for a request, using up one count of the first matching rule.
    pub(crate) fn take(&self, route: Route, path: &str, body: &[u8]) -> Option<Action> {
        let mut rules = self.rules.lock().ok()?;
        let index = rules.iter().position(|f| {
            f.route.is_none_or(|r| r == route)
                && f.contains.as_ref().is_none_or(|needle| {
                    path.contains(needle.as_str())
                        || String::from_utf8_lossy(body).contains(needle.as_str())
                })
        })?;
        let rule = rules.get_mut(index)?;
        if rule.skip > 0 {
            rule.skip -= 1;
            return None;
        }
        let action = rule.action.clone();
        rule.times = rule.times.saturating_sub(1);
        if rule.times == 0 {
            rules.remove(index);
        }
        Some(action)
    }
}
