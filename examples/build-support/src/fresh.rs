//! Whether a built component is older than the files it was compiled from.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// A built component older than one of its sources (or missing).
#[derive(Debug)]
pub enum Stale {
    /// The component file cannot be read.
    Missing {
        /// The component.
        wasm: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A source changed after the component was built.
    Older {
        /// The component.
        wasm: PathBuf,
        /// The newer source.
        source: PathBuf,
    },
}

impl std::fmt::Display for Stale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stale::Missing { wasm, source } => {
                write!(f, "component {}: {source}", wasm.display())
            }
            Stale::Older { wasm, source } => write!(
                f,
                "component {} is older than {}: rebuild it",
                wasm.display(),
                source.display()
            ),
        }
    }
}

impl std::error::Error for Stale {}

/// The files `wasm` was compiled from: those cargo lists in the dep-info file next to it
/// (`name.d`), so files the component never compiles (tests) do not count. Empty when there
/// is no dep-info file.
pub fn sources(wasm: &Path) -> Vec<PathBuf> {
    std::fs::read_to_string(wasm.with_extension("d"))
        .map(|deps| dep_info_sources(&deps))
        .unwrap_or_default()
}

/// Fails if `wasm` is missing or any of its [`sources`] (or, without a dep-info file, any
/// file under `fallback`) was modified after it: a program must never run an old build.
pub fn check_fresh(wasm: &Path, fallback: &[PathBuf]) -> Result<(), Stale> {
    let built = std::fs::metadata(wasm)
        .and_then(|m| m.modified())
        .map_err(|source| Stale::Missing {
            wasm: wasm.to_path_buf(),
            source,
        })?;
    let mut files = sources(wasm);
    if files.is_empty() {
        files = fallback.iter().flat_map(|d| tree(d)).collect();
    }
    match files
        .into_iter()
        .find(|f| modified(f).is_some_and(|m| m > built))
    {
        Some(source) => Err(Stale::Older {
            wasm: wasm.to_path_buf(),
            source,
        }),
        None => Ok(()),
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Every file under `dir`.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut stack = vec![dir.to_path_buf()];
    let mut files = Vec::new();
    while let Some(path) = stack.pop() {
        match std::fs::read_dir(&path) {
            Ok(entries) => stack.extend(entries.flatten().map(|e| e.path())),
            Err(_) if path.is_file() => files.push(path),
            Err(_) => {}
        }
    }
    files
}

/// The prerequisites of the first rule of a Makefile-style dep-info file (`\ ` escapes a
/// space).
pub fn dep_info_sources(deps: &str) -> Vec<PathBuf> {
    let Some(line) = deps.lines().next() else {
        return Vec::new();
    };
    let Some((_, prerequisites)) = line.split_once(": ") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = prerequisites.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&' ') => {
                current.push(' ');
                chars.next();
            }
            ' ' => {
                if !current.is_empty() {
                    out.push(PathBuf::from(std::mem::take(&mut current)));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push(PathBuf::from(current));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::dep_info_sources;
    use std::path::PathBuf;

    #[test]
    fn reads_dep_info() {
        let deps = "/t/a.wasm: /w/src/lib.rs /w/my\\ dir/x.rs /w/wit/s.wit\n\n/w/src/lib.rs:\n";
        assert_eq!(
            dep_info_sources(deps),
            vec![
                PathBuf::from("/w/src/lib.rs"),
                PathBuf::from("/w/my dir/x.rs"),
                PathBuf::from("/w/wit/s.wit")
            ]
        );
    }
}
