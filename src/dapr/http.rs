//! One HTTP exchange with the sidecar over `wasi:http`: the request goes out through
//! `wasi:http/outgoing-handler`, the answer is read with a cap on its size, and the whole
//! exchange is bounded by a timeout. Independent exchanges run concurrently (see
//! [`crate::runtime`]).
//!
//! This talks to the `wasi:http` bindings directly rather than through a general HTTP client:
//! the sidecar's API needs three methods, three request headers and one response header.

use std::time::Duration;

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingResponse, Method as WasiMethod, OutgoingBody, OutgoingRequest,
    Scheme,
};
use wasip2::io::streams::StreamError;

use super::error::DaprError;
use crate::config::ApiToken;
use crate::runtime::{self, Wait};

/// Most bytes asked of the host per read of an answer.
const READ_CHUNK: u64 = 1 << 20;

/// The HTTP methods the sidecar's API needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `DELETE`
    Delete,
}

/// Where the sidecar listens and how to authenticate to it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    https: bool,
    authority: String,
    /// Path before `/v1.0/...`, without a trailing slash (usually empty).
    prefix: String,
    token: Option<ApiToken>,
    timeout: Duration,
}

impl Endpoint {
    /// The sidecar at `base` (`http(s)://host[:port][/prefix]`, already validated).
    pub fn new(base: &str, token: Option<ApiToken>, timeout: Duration) -> Self {
        let (https, rest) = match base.strip_prefix("https://") {
            Some(rest) => (true, rest),
            None => (false, base.strip_prefix("http://").unwrap_or(base)),
        };
        let rest = rest.trim_end_matches('/');
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (
                rest.get(..i).unwrap_or_default(),
                rest.get(i..).unwrap_or_default(),
            ),
            None => (rest, ""),
        };
        Endpoint {
            https,
            authority: authority.to_string(),
            prefix: prefix.to_string(),
            token,
            timeout,
        }
    }
}

/// A request to the sidecar.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Method.
    pub method: Method,
    /// Path and query after the endpoint, starting with `/`.
    pub path: &'a str,
    /// JSON body, if any.
    pub body: Option<&'a [u8]>,
    /// `If-Match` etag, if any.
    pub if_match: Option<&'a str>,
    /// Largest answer body accepted, in bytes.
    pub cap: usize,
}

/// The sidecar's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The `ETag` header, if present.
    pub etag: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

/// Sends `request` and reads the answer, within the endpoint's timeout.
pub async fn exchange(endpoint: &Endpoint, request: Request<'_>) -> Result<Answer, DaprError> {
    match runtime::timeout(endpoint.timeout, send(endpoint, request)).await {
        Ok(Ok(answer)) if answer.status == 401 => Err(DaprError::Unauthorized),
        Ok(result) => result,
        Err(_) => Err(DaprError::Timeout),
    }
}

async fn send(endpoint: &Endpoint, request: Request<'_>) -> Result<Answer, DaprError> {
    let outgoing = build(endpoint, &request)?;
    let body = outgoing
        .body()
        .map_err(|()| internal("request body already taken"))?;
    // Nothing has left the component until `handle` accepts the request.
    let pending = outgoing_handler::handle(outgoing, None).map_err(|e| sending_failed(&e))?;
    if let Some(bytes) = request.body {
        let stream = body
            .write()
            .map_err(|()| internal("request body stream already taken"))?;
        let written = runtime::write_all(&stream, bytes).await;
        drop(stream);
        if let Err(e) = written {
            // The host closed the body: it failed to send, or the sidecar answered early.
            // The answer (or its error) says which.
            drop(body);
            return match answer(&pending_response(pending).await?, request.cap).await {
                Ok(a) => Ok(a),
                Err(_) => Err(DaprError::Interrupted(format!(
                    "sending the body: {}",
                    stream_error(&e)
                ))),
            };
        }
    }
    OutgoingBody::finish(body, None).map_err(|e| broken(&e))?;
    let response = pending_response(pending).await?;
    answer(&response, request.cap).await
}

/// The outgoing request for `request`.
fn build(endpoint: &Endpoint, request: &Request<'_>) -> Result<OutgoingRequest, DaprError> {
    let mut headers: Vec<(String, Vec<u8>)> = Vec::with_capacity(4);
    if let Some(token) = &endpoint.token {
        headers.push(("dapr-api-token".into(), token.as_str().as_bytes().to_vec()));
    }
    if let Some(etag) = request.if_match {
        headers.push(("if-match".into(), etag.as_bytes().to_vec()));
    }
    if let Some(body) = request.body {
        headers.push(("content-type".into(), b"application/json".to_vec()));
        headers.push(("content-length".into(), body.len().to_string().into_bytes()));
    }
    let fields = Fields::from_list(&headers)
        .map_err(|e| DaprError::Unreachable(format!("invalid request header: {e:?}")))?;
    let outgoing = OutgoingRequest::new(fields);
    let method = match request.method {
        Method::Get => WasiMethod::Get,
        Method::Post => WasiMethod::Post,
        Method::Delete => WasiMethod::Delete,
    };
    let scheme = if endpoint.https {
        Scheme::Https
    } else {
        Scheme::Http
    };
    let path = format!("{}{}", endpoint.prefix, request.path);
    let ok = outgoing.set_method(&method).is_ok()
        && outgoing.set_scheme(Some(&scheme)).is_ok()
        && outgoing.set_authority(Some(&endpoint.authority)).is_ok()
        && outgoing.set_path_with_query(Some(&path)).is_ok();
    if ok {
        Ok(outgoing)
    } else {
        Err(DaprError::Unreachable(format!(
            "the host refused the request URL {}://{}{path}",
            if endpoint.https { "https" } else { "http" },
            endpoint.authority
        )))
    }
}

/// Waits for the response head.
async fn pending_response(
    pending: wasip2::http::types::FutureIncomingResponse,
) -> Result<IncomingResponse, DaprError> {
    Wait::new(pending.subscribe()).await;
    match pending.get() {
        Some(Ok(Ok(response))) => Ok(response),
        Some(Ok(Err(code))) => Err(response_failed(&code)),
        Some(Err(())) => Err(internal("response taken twice")),
        None => Err(internal("response not ready after its pollable fired")),
    }
}

/// Status, etag and body of `response`, the body read up to `cap` bytes.
async fn answer(response: &IncomingResponse, cap: usize) -> Result<Answer, DaprError> {
    let status = response.status();
    let (etag, length) = {
        let headers = response.headers();
        let first = |name: &str| {
            headers
                .get(name)
                .into_iter()
                .next()
                .and_then(|v| String::from_utf8(v).ok())
        };
        (
            first("etag"),
            first("content-length").and_then(|l| l.trim().parse::<usize>().ok()),
        )
    };
    if length.is_some_and(|l| l > cap) {
        return Err(too_large(cap));
    }
    let incoming = response
        .consume()
        .map_err(|()| internal("response body taken twice"))?;
    let mut body = Vec::with_capacity(length.unwrap_or(0));
    {
        let stream = incoming
            .stream()
            .map_err(|()| internal("response body stream taken twice"))?;
        loop {
            match stream.read(READ_CHUNK) {
                Ok(bytes) if bytes.is_empty() => {
                    Wait::new(stream.subscribe()).await;
                }
                Ok(bytes) => {
                    if body.len() + bytes.len() > cap {
                        return Err(too_large(cap));
                    }
                    body.extend_from_slice(&bytes);
                }
                Err(StreamError::Closed) => break,
                Err(e @ StreamError::LastOperationFailed(_)) => {
                    return Err(DaprError::Interrupted(format!(
                        "reading the answer: {}",
                        stream_error(&e)
                    )));
                }
            }
        }
    }
    drop(incoming);
    Ok(Answer { status, etag, body })
}

fn stream_error(e: &StreamError) -> String {
    match e {
        StreamError::Closed => "the stream was closed".into(),
        StreamError::LastOperationFailed(e) => e.to_debug_string(),
    }
}

fn too_large(cap: usize) -> DaprError {
    DaprError::Protocol(format!("the answer is larger than {cap} bytes"))
}

fn internal(what: &str) -> DaprError {
    DaprError::Interrupted(format!("wasi:http: {what}"))
}

/// The host would not send the request: nothing left the component.
fn sending_failed(code: &ErrorCode) -> DaprError {
    match code {
        ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout => DaprError::Timeout,
        _ => DaprError::Unreachable(describe(code)),
    }
}

/// The exchange failed after the request was handed to the host. Failures to connect sent
/// nothing; anything later may have reached the sidecar.
fn response_failed(code: &ErrorCode) -> DaprError {
    match code {
        ErrorCode::DnsTimeout
        | ErrorCode::DnsError(_)
        | ErrorCode::DestinationNotFound
        | ErrorCode::DestinationUnavailable
        | ErrorCode::DestinationIpProhibited
        | ErrorCode::DestinationIpUnroutable
        | ErrorCode::ConnectionRefused
        | ErrorCode::HttpRequestDenied
        | ErrorCode::HttpRequestUriInvalid
        | ErrorCode::TlsCertificateError
        | ErrorCode::TlsProtocolError
        | ErrorCode::TlsAlertReceived(_) => DaprError::Unreachable(describe(code)),
        ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout => DaprError::Timeout,
        _ => DaprError::Interrupted(describe(code)),
    }
}

/// A failed `finish` of the request body: the request was on its way.
fn broken(code: &ErrorCode) -> DaprError {
    DaprError::Interrupted(describe(code))
}

fn describe(code: &ErrorCode) -> String {
    match code {
        ErrorCode::DnsTimeout | ErrorCode::DnsError(_) => {
            "the sidecar's host name does not resolve".into()
        }
        ErrorCode::DestinationNotFound | ErrorCode::DestinationUnavailable => {
            "the sidecar's address is unreachable".into()
        }
        ErrorCode::ConnectionRefused => "connection refused".into(),
        ErrorCode::ConnectionTerminated => "connection terminated".into(),
        ErrorCode::HttpProtocolError => "HTTP protocol error".into(),
        ErrorCode::HttpResponseIncomplete => "the response was cut short".into(),
        ErrorCode::HttpRequestDenied => {
            "the host denied the outgoing request (check its allowed outbound hosts)".into()
        }
        ErrorCode::HttpRequestUriInvalid => "invalid request URI".into(),
        _ => "HTTP request failed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_split_into_scheme_authority_and_prefix() {
        let e = Endpoint::new("http://127.0.0.1:3500", None, Duration::from_secs(1));
        assert!(!e.https && e.authority == "127.0.0.1:3500" && e.prefix.is_empty());
        let e = Endpoint::new("https://dapr.local/sidecar/", None, Duration::from_secs(1));
        assert!(e.https && e.authority == "dapr.local" && e.prefix == "/sidecar");
    }
}
