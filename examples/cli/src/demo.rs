//! `dapr-session demo`: a multi-turn conversation through the component, against the
//! embedded Dapr-compatible store, printing what each step stored.

use dapr_session_host::{Host, config};
use dapr_session_local_store::{ServerConfig, StateServer};
use serde_json::{Value, json};

use crate::output::Output;

const STORE: &str = "statestore";

fn msg(role: &str, content: &str) -> String {
    json!({"type": "message", "role": role, "content": content}).to_string()
}

/// Runs the demo and returns what to print: a report per step, or with `--json` one JSON
/// array of steps. The embedded store stops when the demo ends.
pub async fn run(host: &Host, component: &str, out: &Output) -> anyhow::Result<String> {
    let server = StateServer::start(ServerConfig::default()).await?;
    let mut steps = Vec::new();
    let mut text = String::new();
    let mut report = |title: &str, result: Value, server: &StateServer| {
        let stored = stored(server);
        if out.is_json() {
            steps.push(json!({"step": title, "result": result, "stored": stored}));
            return;
        }
        text.push_str(&format!("\n== {title}\n"));
        if !result.is_null() {
            text.push_str(&format!("-> {}\n", compact(&result)));
        }
        text.push_str("   the store now holds:\n");
        match stored.as_object() {
            Some(keys) if !keys.is_empty() => {
                for (k, v) in keys {
                    text.push_str(&format!("     {k} = {}\n", compact(v)));
                }
            }
            _ => text.push_str("     (nothing)\n"),
        }
    };
    let header = format!(
        "embedded Dapr-compatible state store on {} (store {STORE:?}); component: {component}\n",
        server.endpoint(),
    );

    let mut inst = host.instance().await?;
    let s = inst
        .open("user-123", &config(&server.endpoint(), STORE))
        .await?;
    inst.ping(s).await?;
    report(
        "ping: the sidecar is ready and has the store",
        Value::Null,
        &server,
    );

    inst.add_items(
        s,
        &[
            msg("user", "What city is the Golden Gate Bridge in?"),
            msg("assistant", "San Francisco."),
        ],
    )
    .await?;
    report(
        "turn 1: add-items([user question, assistant answer])",
        Value::Null,
        &server,
    );

    // A second turn, in a second instance: what another replica of the app would do.
    let mut replica = host.instance().await?;
    let r = replica
        .open("user-123", &config(&server.endpoint(), STORE))
        .await?;
    let history = replica.get_items(r, None).await?;
    report(
        "turn 2 (another instance): get-items() is the model's history",
        items_json(&history),
        &server,
    );
    replica
        .add_items(
            r,
            &[
                msg("user", "What state is it in?"),
                msg("assistant", "California."),
            ],
        )
        .await?;
    report(
        "turn 2: add-items([user question, assistant answer])",
        Value::Null,
        &server,
    );

    let last_two = inst.get_items(s, Some(2)).await?;
    report(
        "get-items(limit: 2): the newest two, oldest first",
        items_json(&last_two),
        &server,
    );

    let popped = inst.pop_item(s).await?;
    report(
        "pop-item: take back the last answer (e.g. to retry the turn)",
        popped.as_deref().map_or(Value::Null, |p| {
            serde_json::from_str(p).unwrap_or(Value::Null)
        }),
        &server,
    );

    let meta = inst.metadata(s).await?;
    report(
        "metadata",
        json!({"session_id": meta.session_id, "created_at_ms": meta.created_at, "updated_at_ms": meta.updated_at}),
        &server,
    );

    inst.clear(s).await?;
    report("clear", Value::Null, &server);

    if out.is_json() {
        Ok(format!("{}\n", Value::Array(steps)))
    } else {
        Ok(format!(
            "{header}{text}\ndone: every step above went through the component's WIT interface and \
             Dapr's HTTP state API.\n"
        ))
    }
}

fn items_json(items: &[String]) -> Value {
    Value::Array(
        items
            .iter()
            .map(|i| serde_json::from_str(i).unwrap_or(Value::Null))
            .collect(),
    )
}

/// Every key of the demo store with its value (parsed as JSON where it is JSON).
fn stored(server: &StateServer) -> Value {
    let mut map = serde_json::Map::new();
    for key in server.keys(STORE) {
        if let Some(item) = server.raw_get(STORE, &key) {
            let value = serde_json::from_slice(&item.data).unwrap_or_else(|_| {
                Value::String(String::from_utf8_lossy(&item.data).into_owned())
            });
            map.insert(key, value);
        }
    }
    Value::Object(map)
}

fn compact(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 400 {
        let cut: String = s.chars().take(400).collect();
        format!("{cut}…")
    } else {
        s
    }
}
