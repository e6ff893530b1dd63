//! Dapr's state API on top of [`Store`]: request decoding, status codes and error bodies, as
//! daprd v1.18 with `state.in-memory` answers them.

use std::collections::HashMap;
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::answer::{Answer, error_info, illegal_key};
use crate::gojson;
use crate::route::{Route, query_metadata, query_param};
use crate::server::Shared;
use crate::store::{Concurrency, EtagMismatch, Op, Store};

/// The parts of a request the API looks at.
pub(crate) struct Incoming<'a> {
    pub query: Option<&'a str>,
    pub headers: &'a http::HeaderMap<HeaderValue>,
    pub body: &'a [u8],
}

/// Answers one request, applying it to the stores.
pub(crate) fn handle(
    shared: &Shared,
    req: &Incoming<'_>,
    route: Route,
    params: &[String],
) -> Answer {
    let exempt = route == Route::Healthz;
    if let Some(token) = &shared.config.api_token
        && !exempt
    {
        let given = req
            .headers
            .get("dapr-api-token")
            .and_then(|v| v.to_str().ok());
        if given != Some(token.as_str()) {
            return Answer::unauthorized();
        }
    }
    let now = shared.now();
    match route {
        Route::Healthz => {
            if shared.ready.load(std::sync::atomic::Ordering::SeqCst) {
                Answer::empty()
            } else {
                Answer::error(500, "ERR_HEALTH_NOT_READY", "dapr is not ready: [runtime]")
            }
        }
        Route::Metadata => metadata(shared),
        Route::Other => Answer::error(
            404,
            "ERR_DIRECT_INVOKE",
            "failed getting app id either from the URL path or the header dapr-app-id",
        ),
        _ => {
            let Some(store_name) = params.first() else {
                return Answer::error(404, "ERR_DIRECT_INVOKE", "no store");
            };
            let Ok(mut stores) = shared.stores.lock() else {
                return Answer::error(500, "ERR_INTERNAL", "store lock poisoned");
            };
            if stores.is_empty() {
                return Answer::rich(
                    500,
                    "ERR_STATE_STORE_NOT_CONFIGURED",
                    format!("state store {store_name} is not configured"),
                    json!([error_info(
                        "DAPR_STATE_NOT_CONFIGURED",
                        &shared.config.app_id
                    )]),
                );
            }
            let transactional = shared
                .config
                .stores
                .iter()
                .any(|s| &s.name == store_name && s.transactional);
            let Some(store) = stores.get_mut(store_name.as_str()) else {
                return Answer::rich(
                    400,
                    "ERR_STATE_STORE_NOT_FOUND",
                    format!("state store {store_name} is not found"),
                    json!([error_info("DAPR_STATE_NOT_FOUND", &shared.config.app_id)]),
                );
            };
            let key = params.get(1).map(String::as_str).unwrap_or_default();
            match route {
                Route::Get => get(store, store_name, key, req, now),
                Route::Delete => delete(store, store_name, key, req, now),
                Route::Save => save(store, store_name, req, now),
                Route::BulkGet => bulk_get(store, store_name, req, now),
                Route::Transaction if !transactional => Answer::rich(
                    500,
                    "ERR_STATE_STORE_NOT_SUPPORTED",
                    format!("state store {store_name} doesn't support transactions"),
                    json!([error_info(
                        "DAPR_STATE_TRANSACTIONS_NOT_SUPPORTED",
                        &shared.config.app_id
                    )]),
                ),
                Route::Transaction => transaction(store, store_name, req, now),
                _ => Answer::error(404, "ERR_DIRECT_INVOKE", "unreachable"),
            }
        }
    }
}

fn metadata(shared: &Shared) -> Answer {
    let components: Vec<Value> = shared
        .config
        .stores
        .iter()
        .map(|s| {
            let mut caps = vec!["ETAG"];
            if s.transactional {
                caps.push("TRANSACTIONAL");
            }
            caps.push("TTL");
            caps.push("DELETE_WITH_PREFIX");
            caps.push("KEYS_LIKE");
            if s.transactional {
                caps.push("ACTOR");
            }
            json!({"name": s.name, "type": "state.in-memory", "version": "v1", "capabilities": caps})
        })
        .collect();
    let body = json!({
        "id": shared.config.app_id,
        "runtimeVersion": "1.18.2-dapr-session-test-server",
        "enabledFeatures": [],
        "components": components,
        "extended": {"daprRuntimeVersion": "1.18.2-dapr-session-test-server"},
        "actorRuntime": {"runtimeStatus": "DISABLED", "hostReady": false},
    });
    Answer::json(StatusCode::OK, body.to_string().into_bytes())
}

fn parse_concurrency(s: &str) -> Result<Concurrency, String> {
    match s {
        "" | "last-write" => Ok(Concurrency::LastWrite),
        "first-write" => Ok(Concurrency::FirstWrite),
        other => Err(format!("unrecognized concurrency model '{other}'")),
    }
}

fn check_consistency(s: &str) -> Result<(), String> {
    match s {
        "" | "strong" | "eventual" => Ok(()),
        other => Err(format!("unrecognized consistency model '{other}'")),
    }
}

fn parse_ttl(meta: &HashMap<String, String>) -> Result<i64, String> {
    match meta.get("ttlInSeconds").map(String::as_str) {
        None | Some("") => Ok(0),
        Some(s) => s
            .parse::<i64>()
            .map(|t| t.max(0))
            .map_err(|e| format!("strconv.Atoi: parsing \"{s}\": {e}")),
    }
}

fn ttl_header(expire: Option<SystemTime>) -> Option<(String, String)> {
    expire.map(|e| ("metadata.ttlexpiretime".to_string(), rfc3339(e)))
}

/// RFC 3339 UTC with second precision, as Go's `time.RFC3339` prints it.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

fn get(
    store: &mut Store,
    store_name: &str,
    key: &str,
    req: &Incoming<'_>,
    now: SystemTime,
) -> Answer {
    if key.contains("||") {
        return illegal_key(store_name, key);
    }
    if let Err(e) = check_consistency(&query_param(req.query, "consistency").unwrap_or_default()) {
        return Answer::error(
            500,
            "ERR_STATE_GET",
            format!("fail to get {key} from state store {store_name}: {e}"),
        );
    }
    match store.get(key, now) {
        None => Answer::empty(),
        Some(item) => {
            let mut headers = vec![
                ("content-type".to_string(), "application/json".to_string()),
                ("etag".to_string(), item.etag.clone()),
            ];
            headers.extend(ttl_header(item.expire));
            Answer {
                status: StatusCode::OK,
                headers,
                body: Bytes::from(item.data.clone()),
            }
        }
    }
}

fn delete(
    store: &mut Store,
    store_name: &str,
    key: &str,
    req: &Incoming<'_>,
    now: SystemTime,
) -> Answer {
    if key.contains("||") {
        return illegal_key(store_name, key);
    }
    let fail = |status: u16, msg: String| {
        Answer::error(
            status,
            "ERR_STATE_DELETE",
            format!("failed deleting state with key {key}: {msg}"),
        )
    };
    let concurrency =
        match parse_concurrency(&query_param(req.query, "concurrency").unwrap_or_default()) {
            Ok(c) => c,
            Err(e) => return fail(500, e),
        };
    if let Err(e) = check_consistency(&query_param(req.query, "consistency").unwrap_or_default()) {
        return fail(500, e);
    }
    let etag = req.headers.get("if-match").and_then(|v| v.to_str().ok());
    match store.delete(key, etag, concurrency, now) {
        Ok(()) => Answer::empty(),
        Err(EtagMismatch(m)) => fail(
            409,
            format!("possible etag mismatch. error from state store: {m}"),
        ),
    }
}

/// One element of a save body. Fields mirror Go's `state.SetRequest` decoding.
#[derive(Deserialize)]
struct SetRequest {
    #[serde(default)]
    key: String,
    #[serde(default)]
    value: Option<Value>,
    #[serde(default)]
    etag: Option<String>,
    #[serde(default)]
    metadata: Option<HashMap<String, String>>,
    #[serde(default)]
    options: Option<SetOptions>,
}

#[derive(Deserialize, Default)]
struct SetOptions {
    #[serde(default)]
    concurrency: String,
    #[serde(default)]
    consistency: String,
}

struct Prepared {
    key: String,
    data: Vec<u8>,
    etag: Option<String>,
    concurrency: Concurrency,
    ttl: i64,
}

fn prepare(r: SetRequest, url_meta: &HashMap<String, String>) -> Result<Prepared, String> {
    let options = r.options.unwrap_or_default();
    let concurrency = parse_concurrency(&options.concurrency)?;
    check_consistency(&options.consistency)?;
    let mut meta = r.metadata.unwrap_or_default();
    meta.extend(url_meta.iter().map(|(k, v)| (k.clone(), v.clone())));
    let ttl = parse_ttl(&meta)?;
    Ok(Prepared {
        key: r.key,
        data: gojson::marshal(&r.value.unwrap_or(Value::Null)),
        etag: r.etag.filter(|e| !e.is_empty()),
        concurrency,
        ttl,
    })
}

fn save(store: &mut Store, store_name: &str, req: &Incoming<'_>, now: SystemTime) -> Answer {
    let reqs: Vec<SetRequest> = match serde_json::from_slice(req.body) {
        Ok(r) => r,
        Err(e) => return Answer::error(400, "ERR_MALFORMED_REQUEST", e.to_string()),
    };
    if reqs.is_empty() {
        return Answer::empty();
    }
    if reqs.iter().any(|r| r.key.is_empty()) {
        return Answer::error(400, "ERR_MALFORMED_REQUEST", "\"key\" is a required field");
    }
    if let Some(r) = reqs.iter().find(|r| r.key.contains("||")) {
        return illegal_key(store_name, &r.key);
    }
    let url_meta = query_metadata(req.query);
    let fail = |status: u16, msg: String| {
        Answer::error(
            status,
            "ERR_STATE_SAVE",
            format!("failed saving state in state store {store_name}: {msg}"),
        )
    };
    let mut etag_errors = Vec::new();
    let mut other_errors = Vec::new();
    for r in reqs {
        match prepare(r, &url_meta) {
            Err(e) => other_errors.push(e),
            Ok(p) => {
                if let Err(EtagMismatch(m)) =
                    store.set(&p.key, p.data, p.etag.as_deref(), p.concurrency, p.ttl, now)
                {
                    etag_errors.push(format!(
                        "possible etag mismatch. error from state store: {m}"
                    ));
                }
            }
        }
    }
    if !other_errors.is_empty() {
        other_errors.extend(etag_errors);
        return fail(500, other_errors.join("\n"));
    }
    if !etag_errors.is_empty() {
        return fail(409, etag_errors.join("\n"));
    }
    Answer::empty()
}

#[derive(Deserialize)]
struct BulkGetRequest {
    #[serde(default)]
    keys: Vec<String>,
}

fn bulk_get(store: &mut Store, store_name: &str, req: &Incoming<'_>, now: SystemTime) -> Answer {
    let request: BulkGetRequest = match serde_json::from_slice(req.body) {
        Ok(r) => r,
        Err(e) => {
            return Answer::error(
                400,
                "ERR_MALFORMED_REQUEST",
                format!("failed deserializing HTTP body: {e}"),
            );
        }
    };
    if let Some(k) = request.keys.iter().find(|k| k.contains("||")) {
        return illegal_key(store_name, k);
    }
    let mut out = Vec::with_capacity(request.keys.len());
    for key in &request.keys {
        match store.get(key, now) {
            None => out.push(json!({"key": key})),
            Some(item) => {
                // Go embeds the data as json.RawMessage; bytes that are not JSON make the
                // encoder fail, and daprd then answers 200 with an empty body.
                let Ok(data) = serde_json::from_slice::<&serde_json::value::RawValue>(&item.data)
                else {
                    return Answer::json(StatusCode::OK, Vec::new());
                };
                let mut entry = json!({"key": key, "data": data, "etag": item.etag});
                if let (Some(e), Some(obj)) = (item.expire, entry.as_object_mut()) {
                    obj.insert("metadata".into(), json!({"ttlExpireTime": rfc3339(e)}));
                }
                out.push(entry);
            }
        }
    }
    Answer::json(StatusCode::OK, Value::Array(out).to_string().into_bytes())
}

#[derive(Deserialize)]
struct TransactionRequest {
    #[serde(default)]
    operations: Vec<TransactionOp>,
}

#[derive(Deserialize)]
struct TransactionOp {
    #[serde(default)]
    operation: String,
    #[serde(default)]
    request: Value,
}

fn transaction(store: &mut Store, store_name: &str, req: &Incoming<'_>, now: SystemTime) -> Answer {
    let request: TransactionRequest = match serde_json::from_slice(req.body) {
        Ok(r) => r,
        Err(e) => {
            return Answer::error(
                400,
                "ERR_MALFORMED_REQUEST",
                format!("failed deserializing HTTP body: {e}"),
            );
        }
    };
    let url_meta = query_metadata(req.query);
    let mut ops = Vec::with_capacity(request.operations.len());
    for op in request.operations {
        match op.operation.as_str() {
            "upsert" => {
                let r: SetRequest = match serde_json::from_value(op.request) {
                    Ok(r) => r,
                    Err(e) => return Answer::error(400, "ERR_MALFORMED_REQUEST", e.to_string()),
                };
                if r.key.contains("||") {
                    return illegal_key(store_name, &r.key);
                }
                let p = match prepare(r, &url_meta) {
                    Ok(p) => p,
                    Err(e) => {
                        return Answer::error(
                            500,
                            "ERR_STATE_TRANSACTION",
                            format!("error while executing state transaction: {e}"),
                        );
                    }
                };
                ops.push(Op::Set {
                    key: p.key,
                    data: p.data,
                    etag: p.etag,
                    concurrency: p.concurrency,
                    ttl: p.ttl,
                });
            }
            "delete" => {
                let r: SetRequest = match serde_json::from_value(op.request) {
                    Ok(r) => r,
                    Err(e) => return Answer::error(400, "ERR_MALFORMED_REQUEST", e.to_string()),
                };
                if r.key.contains("||") {
                    return illegal_key(store_name, &r.key);
                }
                let options = r.options.unwrap_or_default();
                let concurrency = match parse_concurrency(&options.concurrency) {
                    Ok(c) => c,
                    Err(e) => {
                        return Answer::error(
                            500,
                            "ERR_STATE_TRANSACTION",
                            format!("error while executing state transaction: {e}"),
                        );
                    }
                };
                ops.push(Op::Delete {
                    key: r.key,
                    etag: r.etag.filter(|e| !e.is_empty()),
                    concurrency,
                });
            }
            other => {
                return Answer::error(
                    400,
                    "ERR_NOT_SUPPORTED_STATE_OPERATION",
                    format!("operation type {other} not supported"),
                );
            }
        }
    }
    if ops.is_empty() {
        return Answer::empty();
    }
    match store.transact(ops, now) {
        Ok(()) => Answer::empty(),
        Err(EtagMismatch(m)) => Answer::error(
            500,
            "ERR_STATE_TRANSACTION",
            format!(
                "error while executing state transaction: possible etag mismatch. error from state store: {m}"
            ),
        ),
    }
}
