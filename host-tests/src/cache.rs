//! The per-machine cache of heavy, reusable artifacts (the daprd binary, the Python venv),
//! outside any clone, and a lock so that processes racing for one artifact build it once.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// The cache directory: `$DAPR_SESSION_CACHE`, else `$XDG_CACHE_HOME/dapr-session`, else
/// `~/.cache/dapr-session`.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("DAPR_SESSION_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("dapr-session")
}

/// An exclusive lock on a file, held until dropped. It is `flock(2)`: it excludes other
/// processes and other handles in this process alike, and the kernel releases it when the
/// holder dies, so a crashed build never leaves the cache locked.
#[derive(Debug)]
pub struct CacheLock {
    _file: File,
}

impl CacheLock {
    /// Takes the lock on `path` (created if missing), waiting for its holder if there is
    /// one; `what` names the work it guards in the message printed while waiting.
    pub fn acquire(path: &Path, what: &str) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .with_context(|| format!("opening lock file {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                eprintln!(
                    "waiting for another process {what} (lock {})",
                    path.display()
                );
                file.lock()
                    .with_context(|| format!("locking {}", path.display()))?;
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()));
            }
        }
        Ok(CacheLock { _file: file })
    }
}

/// Makes sure `artifact` exists: if it is missing, takes the lock `<artifact>.lock`, looks
/// again (another process may have made it meanwhile), and only then runs `make`, which must
/// leave a whole artifact at that path or none (write elsewhere, then rename). Returns
/// whether this call made it.
pub fn build_once(
    artifact: &Path,
    what: &str,
    make: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<bool> {
    if artifact.exists() {
        return Ok(false);
    }
    let mut lock_name = artifact.as_os_str().to_owned();
    lock_name.push(".lock");
    let _lock = CacheLock::acquire(Path::new(&lock_name), what)?;
    if artifact.exists() {
        return Ok(false);
    }
    make()?;
    anyhow::ensure!(
        artifact.exists(),
        "{what}: finished without making {}",
        artifact.display()
    );
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};
    use std::time::Duration;

    #[test]
    fn racing_threads_build_once() {
        let dir = std::env::temp_dir().join(format!("dapr-session-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let artifact = dir.join("artifact");
        let builds = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let start = Arc::new(Barrier::new(4));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (artifact, builds, start) = (artifact.clone(), builds.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    build_once(&artifact, "building a test artifact", || {
                        builds.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(200));
                        let part = artifact.with_extension("part");
                        std::fs::write(&part, b"whole")?;
                        std::fs::rename(&part, &artifact)?;
                        Ok(())
                    })
                    .unwrap()
                })
            })
            .collect();
        let made: Vec<bool> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(builds.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(made.iter().filter(|m| **m).count(), 1, "{made:?}");
        assert_eq!(std::fs::read(&artifact).unwrap(), b"whole");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
