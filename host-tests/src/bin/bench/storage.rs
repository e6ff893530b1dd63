//! What a session occupies in Redis: its keys and the bytes Redis reports for them
//! (`MEMORY USAGE`, which counts the key, the value and Redis's own overhead), and the bytes of
//! the values themselves (the `data` field of daprd's hash).

use dapr_session_host_tests::redis::{Reply, Resp};

/// The storage of one session.
#[derive(Debug, Clone, Copy, Default)]
pub struct Storage {
    /// Keys in the store.
    pub keys: usize,
    /// Bytes Redis reports (`MEMORY USAGE`, summed).
    pub memory: u64,
    /// Bytes of the stored values.
    pub values: u64,
}

/// The storage of the session whose state keys start with `prefix` (daprd's `{app-id}||` and
/// the session's own key base; a `:` is added).
pub async fn measure(redis: &mut Resp, app_id: &str, base: &str) -> anyhow::Result<Storage> {
    let keys = redis.keys(&format!("{app_id}||{base}:*")).await?;
    let mut out = Storage {
        keys: keys.len(),
        ..Storage::default()
    };
    for key in keys {
        if let Reply::Integer(n) = redis
            .command(&[b"MEMORY", b"USAGE", key.as_bytes(), b"SAMPLES", b"0"])
            .await?
        {
            out.memory += u64::try_from(n).unwrap_or(0);
        }
        if let Reply::Integer(n) = redis
            .command(&[b"HSTRLEN", key.as_bytes(), b"data"])
            .await?
        {
            out.values += u64::try_from(n).unwrap_or(0);
        }
    }
    Ok(out)
}
