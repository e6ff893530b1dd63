//! Answers one request: route it, call the session, and turn the result into JSON.

use http_body_util::{BodyExt, Limited};
use serde_json::json;
use serde_json::value::RawValue;
use wstd::http::{Body, HeaderValue, Request, Response, StatusCode};

use crate::api_error::ApiError;
use crate::bindings::agentmem::session::session::{Config, Session};
use crate::routes::{Route, RouteError, route};

/// Largest request body accepted (a batch of items).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// The response to `request`, sessions opened with `config` (or the error that made it).
pub async fn handle(request: Request<Body>, config: Result<Config, String>) -> Response<Body> {
    match answer(request, config).await {
        Ok(response) => response,
        Err(e) => {
            let mut response = json_response(e.status, e.body());
            if let Some(allow) = e.allow {
                response
                    .headers_mut()
                    .insert("allow", HeaderValue::from_static(allow));
            }
            response
        }
    }
}

async fn answer(
    request: Request<Body>,
    config: Result<Config, String>,
) -> Result<Response<Body>, ApiError> {
    let (parts, body) = request.into_parts();
    let route = route(&parts.method, parts.uri.path(), parts.uri.query()).map_err(|e| match e {
        RouteError::NotFound => ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no route for {}", parts.uri.path()),
        ),
        RouteError::MethodNotAllowed { allow } => ApiError {
            allow: Some(allow),
            ..ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{} takes {allow}", parts.uri.path()),
            )
        },
        RouteError::BadRequest(m) => ApiError::bad_request(m),
    })?;
    let config =
        config.map_err(|m| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "misconfigured", m))?;
    let open = |id: &str| Session::open(id, &config).map_err(ApiError::from);
    match route {
        Route::GetItems { id, limit } => {
            let items = open(&id)?.get_items(limit)?;
            Ok(json_response(StatusCode::OK, json_array(items)?))
        }
        Route::AddItems { id } => {
            if let Some(kind) = parts.headers.get("content-type")
                && !kind.as_bytes().starts_with(b"application/json")
            {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "send the items as application/json",
                ));
            }
            let items = items_of(body).await?;
            let added = items.len();
            open(&id)?.add_items(&items)?;
            Ok(json_response(
                StatusCode::OK,
                json!({"added": added}).to_string(),
            ))
        }
        Route::PopItem { id } => match open(&id)?.pop_item()? {
            Some(item) => Ok(json_response(StatusCode::OK, item)),
            None => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "empty",
                format!("session {id:?} has no items"),
            )),
        },
        Route::Metadata { id } => {
            let m = open(&id)?.metadata()?;
            Ok(json_response(
                StatusCode::OK,
                json!({
                    "session_id": m.session_id,
                    "created_at": m.created_at,
                    "updated_at": m.updated_at,
                })
                .to_string(),
            ))
        }
        Route::Clear { id } => {
            open(&id)?.clear()?;
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::NO_CONTENT;
            Ok(response)
        }
        Route::Health => {
            open("healthz")?.ping()?;
            Ok(json_response(
                StatusCode::OK,
                json!({"status": "ok"}).to_string(),
            ))
        }
    }
}

/// The items of a request body: a JSON array, each element re-encoded as JSON text.
async fn items_of(body: Body) -> Result<Vec<String>, ApiError> {
    let bytes = Limited::new(body.into_boxed_body(), MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!("a request body holds at most {MAX_BODY_BYTES} bytes"),
                )
            } else {
                ApiError::bad_request(format!("could not read the request body: {e}"))
            }
        })?
        .to_bytes();
    let items: Vec<Box<RawValue>> = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(format!("the body must be a JSON array of items: {e}"))
    })?;
    Ok(items.into_iter().map(|i| String::from(i.get())).collect())
}

/// A JSON array of items, each already JSON text.
fn json_array(items: Vec<String>) -> Result<String, ApiError> {
    let raw: Result<Vec<Box<RawValue>>, _> = items.into_iter().map(RawValue::from_string).collect();
    let raw = raw.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "corrupt",
            format!("the session returned an item that is not JSON: {e}"),
        )
    })?;
    serde_json::to_string(&raw)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))
}

fn json_response(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    response
}
