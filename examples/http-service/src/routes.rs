//! The service's routes: what a request's method and path ask for.

use wstd::http::Method;

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /sessions/{id}/items[?limit=N]`: the newest `limit` items (all without one).
    GetItems {
        /// Session id.
        id: String,
        /// How many of the newest items.
        limit: Option<u32>,
    },
    /// `POST /sessions/{id}/items`: append a JSON array of items as one batch.
    AddItems {
        /// Session id.
        id: String,
    },
    /// `DELETE /sessions/{id}/items/last`: remove and return the newest item.
    PopItem {
        /// Session id.
        id: String,
    },
    /// `GET /sessions/{id}`: the session's timestamps.
    Metadata {
        /// Session id.
        id: String,
    },
    /// `DELETE /sessions/{id}`: remove every item.
    Clear {
        /// Session id.
        id: String,
    },
    /// `GET /healthz`: the sidecar is up and has the store.
    Health,
}

/// Why a request matches no route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// No such path.
    NotFound,
    /// The path exists, not with this method; `allow` lists the methods it takes.
    MethodNotAllowed {
        /// Value for the `allow` header.
        allow: &'static str,
    },
    /// The path or query is malformed.
    BadRequest(String),
}

/// Matches a request line.
pub fn route(method: &Method, path: &str, query: Option<&str>) -> Result<Route, RouteError> {
    let segments: Vec<&str> = path
        .strip_prefix('/')
        .unwrap_or(path)
        .trim_end_matches('/')
        .split('/')
        .collect();
    match segments.as_slice() {
        ["healthz"] => match *method {
            Method::GET => Ok(Route::Health),
            _ => Err(RouteError::MethodNotAllowed { allow: "GET" }),
        },
        ["sessions", id] => {
            let id = session_id(id)?;
            match *method {
                Method::GET => Ok(Route::Metadata { id }),
                Method::DELETE => Ok(Route::Clear { id }),
                _ => Err(RouteError::MethodNotAllowed {
                    allow: "GET, DELETE",
                }),
            }
        }
        ["sessions", id, "items"] => {
            let id = session_id(id)?;
            match *method {
                Method::GET => Ok(Route::GetItems {
                    id,
                    limit: limit(query)?,
                }),
                Method::POST => Ok(Route::AddItems { id }),
                _ => Err(RouteError::MethodNotAllowed { allow: "GET, POST" }),
            }
        }
        ["sessions", id, "items", "last"] => {
            let id = session_id(id)?;
            match *method {
                Method::DELETE => Ok(Route::PopItem { id }),
                _ => Err(RouteError::MethodNotAllowed { allow: "DELETE" }),
            }
        }
        _ => Err(RouteError::NotFound),
    }
}

/// A path segment, percent-decoded, as a session id.
fn session_id(segment: &str) -> Result<String, RouteError> {
    let id = percent_decode(segment).ok_or_else(|| {
        RouteError::BadRequest("the session id is not valid percent-encoded UTF-8".into())
    })?;
    if id.is_empty() {
        return Err(RouteError::BadRequest("the session id is empty".into()));
    }
    Ok(id)
}

/// The `limit` query parameter, if given.
fn limit(query: Option<&str>) -> Result<Option<u32>, RouteError> {
    let Some(query) = query else {
        return Ok(None);
    };
    let mut limit = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == "limit" {
            let n = value.parse::<u32>().map_err(|_| {
                RouteError::BadRequest(format!(
                    "limit must be a whole number from 0 to {}, not {value:?}",
                    u32::MAX
                ))
            })?;
            limit = Some(n);
        }
    }
    Ok(limit)
}

/// Decodes `%XX` escapes; `None` for a bad escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let id = |s: &str| s.to_string();
        assert_eq!(
            route(&Method::GET, "/sessions/a%20b/items", Some("limit=20")),
            Ok(Route::GetItems {
                id: id("a b"),
                limit: Some(20)
            })
        );
        assert_eq!(
            route(&Method::GET, "/sessions/x/items/", None),
            Ok(Route::GetItems {
                id: id("x"),
                limit: None
            })
        );
        assert_eq!(
            route(&Method::POST, "/sessions/x/items", None),
            Ok(Route::AddItems { id: id("x") })
        );
        assert_eq!(
            route(&Method::DELETE, "/sessions/x/items/last", None),
            Ok(Route::PopItem { id: id("x") })
        );
        assert_eq!(
            route(&Method::DELETE, "/sessions/x", None),
            Ok(Route::Clear { id: id("x") })
        );
        assert_eq!(route(&Method::GET, "/healthz", None), Ok(Route::Health));
        assert_eq!(
            route(&Method::PUT, "/sessions/x/items", None),
            Err(RouteError::MethodNotAllowed { allow: "GET, POST" })
        );
        assert_eq!(
            route(&Method::GET, "/nope", None),
            Err(RouteError::NotFound)
        );
        assert!(matches!(
            route(&Method::GET, "/sessions/x/items", Some("limit=-1")),
            Err(RouteError::BadRequest(_))
        ));
        assert!(matches!(
            route(&Method::GET, "/sessions/%ff/items", None),
            Err(RouteError::BadRequest(_))
        ));
        assert!(matches!(
            route(&Method::GET, "/sessions/%2/items", None),
            Err(RouteError::BadRequest(_))
        ));
    }
}
