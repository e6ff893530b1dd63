//! What the API answers: status, headers and body, and daprd's error bodies.

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

use crate::server::Body;

/// What the handler decided to answer.
pub struct Answer {
    /// HTTP status.
    pub status: StatusCode,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: Bytes,
}

impl Answer {
    pub(crate) fn empty() -> Self {
        Answer {
            status: StatusCode::NO_CONTENT,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    pub(crate) fn json(status: StatusCode, body: Vec<u8>) -> Self {
        Answer {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: Bytes::from(body),
        }
    }

    /// daprd's legacy error body: `{"errorCode","message"}`.
    pub fn error(status: u16, code: &str, message: impl Into<String>) -> Self {
        let body = json!({"errorCode": code, "message": message.into()});
        Answer::json(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body.to_string().into_bytes(),
        )
    }

    /// daprd's rich (kit) error body, with `details`.
    pub(crate) fn rich(
        status: u16,
        code: &str,
        message: impl Into<String>,
        details: Value,
    ) -> Self {
        let body = json!({"errorCode": code, "message": message.into(), "details": details});
        Answer::json(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body.to_string().into_bytes(),
        )
    }

    pub(crate) fn unauthorized() -> Self {
        Answer {
            status: StatusCode::UNAUTHORIZED,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: Bytes::from_static(b"invalid api token\n"),
        }
    }
}

impl Answer {
    /// The HTTP response.
    pub fn into_response(self) -> http::Response<Body> {
        let mut response = http::Response::new(
            Full::new(self.body)
                .map_err(|e: std::convert::Infallible| match e {})
                .boxed(),
        );
        *response.status_mut() = self.status;
        for (name, value) in &self.headers {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_str(value),
            ) {
                response.headers_mut().append(name, value);
            }
        }
        response
    }
}

pub(crate) fn error_info(reason: &str, app_id: &str) -> Value {
    json!({
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "domain": "dapr.io",
        "reason": reason,
        "metadata": {"appID": app_id},
    })
}

pub(crate) fn illegal_key(store: &str, key: &str) -> Answer {
    Answer::rich(
        400,
        "ERR_MALFORMED_REQUEST",
        format!("input key/keyPrefix '{key}' can't contain '||'"),
        json!([
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "domain": "dapr.io", "reason": "DAPR_STATE_ILLEGAL_KEY", "metadata": {}},
            {"@type": "type.googleapis.com/google.rpc.ResourceInfo", "resource_type": "state", "resource_name": store, "owner": "", "description": ""},
            {"@type": "type.googleapis.com/google.rpc.BadRequest", "field_violations": [{"field": key, "description": format!("input key/keyPrefix '{key}' can't contain '||'")}]},
        ]),
    )
}
