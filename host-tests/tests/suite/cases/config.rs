//! Configuration, the health check, the API token and errors about the sidecar.

use anyhow::ensure;
use dapr_session_host_tests::host::{InstanceOptions, SessionError};

use super::{contents, msg, session_error};
use crate::harness::{CaseResult, Ctx};

/// Upstream `test_dapr_connectivity`: ping succeeds and writes nothing.
pub async fn ping_ok(ctx: Ctx) -> CaseResult {
    let traffic = dapr_session_host_tests::host::Traffic::default();
    let mut inst = ctx
        .instance_with(InstanceOptions {
            hooks: dapr_session_host_tests::host::Hooks {
                traffic: Some(traffic.clone()),
                before_send: None,
                pool: None,
            },
            ..Default::default()
        })
        .await?;
    let s = ctx.open(&mut inst, &ctx.id("ping")).await?;
    inst.ping(s).await?;
    let paths: Vec<String> = traffic
        .exchanges()
        .iter()
        .map(|e| format!("{} {}", e.method, e.path_and_query()))
        .collect();
    ensure!(
        paths == ["GET /v1.0/healthz", "GET /v1.0/metadata"],
        "{paths:?}"
    );
    Ok(())
}

/// Upstream `test_ping_connection_failure`: a sidecar that is not there is `unavailable`.
pub async fn ping_reports_unreachable_sidecar(ctx: Ctx) -> CaseResult {
    let mut inst = ctx.instance().await?;
    let mut config = ctx.config();
    config.endpoint = Some(format!("http://127.0.0.1:{}", closed_port()?));
    let s = inst.open(&ctx.id("down"), &config).await?;
    let err = session_error(inst.ping(s).await)?;
    ensure!(matches!(err, SessionError::Unavailable(_)), "{err:?}");
    Ok(())
}

/// Every operation on a store the sidecar does not have is `store-not-found`, and ping says so.
pub async fn wrong_store_name(ctx: Ctx) -> CaseResult {
    let mut inst = ctx.instance().await?;
    let mut config = ctx.config();
    config.store_name = "no-such-store".into();
    let s = inst.open(&ctx.id("nostore"), &config).await?;
    for (op, r) in [
        ("get", inst.get_items(s, None).await.map(|_| ())),
        ("add", inst.add_items(s, &[msg("user", "x")]).await),
        ("pop", inst.pop_item(s).await.map(|_| ())),
        ("ping", inst.ping(s).await),
    ] {
        let err = session_error(r)?;
        ensure!(
            matches!(err, SessionError::StoreNotFound(_)),
            "{op}: {err:?}"
        );
    }
    Ok(())
}

/// With a token configured on the sidecar, the right token works; a wrong or missing one is
/// `unauthorized`, and the token never appears in an error.
pub async fn api_token_accepted_and_refused(ctx: Ctx) -> CaseResult {
    let Some(token) = ctx.backend.api_token.clone() else {
        anyhow::bail!("this backend runs without an API token");
    };
    let id = ctx.id("token");
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &id).await?;
    inst.add_items(s, &[msg("user", "authorized")]).await?;
    inst.ping(s).await?;

    for wrong in [Some("wrong-token".to_string()), None] {
        let mut config = ctx.config();
        config.api_token = wrong.clone();
        let bad = inst.open(&id, &config).await?;
        for (op, r) in [
            ("get", inst.get_items(bad, None).await.map(|_| ())),
            ("add", inst.add_items(bad, &[msg("user", "x")]).await),
            ("ping", inst.ping(bad).await),
        ] {
            let err = session_error(r)?;
            ensure!(
                matches!(err, SessionError::Unauthorized),
                "{op} with {wrong:?}: {err:?}"
            );
            ensure!(!format!("{err:?}").contains(&token));
        }
    }
    ensure!(contents(&inst.get_items(s, None).await?) == ["authorized"]);
    Ok(())
}

/// `DAPR_API_TOKEN` in the component's environment is used when the config has none.
pub async fn api_token_from_environment(ctx: Ctx) -> CaseResult {
    let Some(token) = ctx.backend.api_token.clone() else {
        anyhow::bail!("this backend runs without an API token");
    };
    let mut inst = ctx
        .instance_with(InstanceOptions {
            env: vec![("DAPR_API_TOKEN".into(), token)],
            ..Default::default()
        })
        .await?;
    let mut config = ctx.config();
    config.api_token = None;
    let s = inst.open(&ctx.id("env-token"), &config).await?;
    inst.add_items(s, &[msg("user", "via env")]).await?;
    ensure!(inst.get_items(s, None).await?.len() == 1);
    Ok(())
}

/// Without an endpoint in the config, `DAPR_HTTP_ENDPOINT`, then `DAPR_HTTP_PORT` are used.
pub async fn endpoint_from_environment(ctx: Ctx) -> CaseResult {
    let endpoint = ctx.backend.endpoint.clone();
    let port = endpoint.rsplit(':').next().unwrap_or_default().to_string();
    for env in [
        vec![("DAPR_HTTP_ENDPOINT".to_string(), endpoint.clone())],
        vec![("DAPR_HTTP_PORT".to_string(), port.clone())],
        vec![
            ("DAPR_HTTP_ENDPOINT".to_string(), endpoint.clone()),
            ("DAPR_HTTP_PORT".to_string(), "1".into()),
        ],
    ] {
        let mut inst = ctx
            .instance_with(InstanceOptions {
                env: env.clone(),
                ..Default::default()
            })
            .await?;
        let mut config = ctx.config();
        config.endpoint = None;
        let s = inst.open(&ctx.id("env-endpoint"), &config).await?;
        inst.ping(s)
            .await
            .map_err(|e| anyhow::anyhow!("{env:?}: {e}"))?;
    }
    Ok(())
}

/// Bad configs are `invalid-input` at open, before anything is sent.
pub async fn invalid_config_is_rejected(ctx: Ctx) -> CaseResult {
    let mut inst = ctx.instance().await?;
    let base = ctx.config();
    let mut bad = Vec::new();
    let mut c = base.clone();
    c.store_name = String::new();
    bad.push(("empty store", c));
    let mut c = base.clone();
    c.store_name = "a/b".into();
    bad.push(("store with slash", c));
    let mut c = base.clone();
    c.endpoint = Some("127.0.0.1:3500".into());
    bad.push(("endpoint without scheme", c));
    let mut c = base.clone();
    c.endpoint = Some("ftp://127.0.0.1".into());
    bad.push(("ftp endpoint", c));
    let mut c = base.clone();
    c.endpoint = Some("http://".into());
    bad.push(("endpoint without host", c));
    let mut c = base.clone();
    c.endpoint = Some("http://127.0.0.1:3500/?x=1".into());
    bad.push(("endpoint with query", c));
    let mut c = base.clone();
    c.ttl_seconds = Some(0);
    bad.push(("ttl 0", c));
    let mut c = base.clone();
    c.timeout_ms = Some(0);
    bad.push(("timeout 0", c));
    for prefix in ["", "a:b", "a||b", "new\nline"] {
        let mut c = base.clone();
        c.key_prefix = Some(prefix.into());
        bad.push(("prefix", c));
    }
    let mut c = base.clone();
    c.api_token = Some("line\nbreak".into());
    bad.push(("token with newline", c));
    for (what, config) in bad {
        let err = session_error(inst.open(&ctx.id("cfg"), &config).await)?;
        ensure!(
            matches!(err, SessionError::InvalidInput(_)),
            "{what}: {err:?}"
        );
    }
    Ok(())
}

/// Empty, over-long, `||`-holding and control-character ids are refused at open.
pub async fn invalid_session_ids_are_rejected(ctx: Ctx) -> CaseResult {
    let mut inst = ctx.instance().await?;
    let config = ctx.config();
    let long = "x".repeat(4096);
    for id in ["", long.as_str(), "a||b", "nul\0", "line\nbreak"] {
        let err = session_error(inst.open(id, &config).await)?;
        ensure!(
            matches!(err, SessionError::InvalidInput(_)),
            "{:?}: {err:?}",
            id.get(..20)
        );
    }
    // 512 bytes is the limit and works.
    let edge = format!("{}-{}", ctx.id("edge"), "y".repeat(512));
    let edge = edge.get(..512).unwrap_or_default().to_string();
    let s = inst.open(&edge, &config).await?;
    inst.add_items(s, &[msg("user", "edge")]).await?;
    ensure!(inst.get_items(s, None).await?.len() == 1);
    Ok(())
}

/// Operations on a sidecar that is not there fail with `unavailable`, quickly.
pub async fn unreachable_sidecar_is_unavailable(ctx: Ctx) -> CaseResult {
    let mut inst = ctx.instance().await?;
    let mut config = ctx.config();
    config.endpoint = Some(format!("http://127.0.0.1:{}", closed_port()?));
    let s = inst.open(&ctx.id("unreachable"), &config).await?;
    let started = std::time::Instant::now();
    for r in [
        inst.get_items(s, None).await.map(|_| ()),
        inst.add_items(s, &[msg("user", "x")]).await,
        inst.clear(s).await,
    ] {
        let err = session_error(r)?;
        ensure!(matches!(err, SessionError::Unavailable(_)), "{err:?}");
    }
    ensure!(started.elapsed() < std::time::Duration::from_secs(5));
    Ok(())
}

/// A loopback port nothing listens on.
fn closed_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}
