//! The package a WIT file declares.

use std::path::{Path, PathBuf};

/// Why a WIT file's package could not be read.
#[derive(Debug)]
pub enum WitError {
    /// The file cannot be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It has no `package ns:name@version;` line.
    NoPackage(PathBuf),
}

impl std::fmt::Display for WitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WitError::Read { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            WitError::NoPackage(path) => {
                write!(f, "{} declares no versioned package", path.display())
            }
        }
    }
}

impl std::error::Error for WitError {}

/// The package `path` declares, e.g. `agentmem:session@0.1.0` for
/// `package agentmem:session@0.1.0;` (the first `package` line; a package without a version
/// is refused).
pub fn wit_package(path: &Path) -> Result<String, WitError> {
    let text = std::fs::read_to_string(path).map_err(|source| WitError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    text.lines()
        .find_map(|l| l.trim().strip_prefix("package "))
        .and_then(|p| p.trim().strip_suffix(';'))
        .map(str::trim)
        .filter(|p| p.contains(':') && p.contains('@'))
        .map(str::to_string)
        .ok_or_else(|| WitError::NoPackage(path.to_path_buf()))
}
