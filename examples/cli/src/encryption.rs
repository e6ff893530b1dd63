//! `--encryption-key-file`: the master key of the encryption middleware, read from its file
//! and handed to the component through `wasi:config/store` (`encryption_key`). The key never
//! appears in a message, a `Debug` output or the command line.

use std::path::Path;

use dapr_session_host::Host;

use crate::cli::Global;
use crate::exit::Kind;
use crate::failure::Failure;

/// The `wasi:config/store` name the middleware reads its key from.
const KEY_NAME: &str = "encryption_key";
/// The import a component must have to receive the key.
pub const CONFIG_STORE: &str = "wasi:config/store@0.2.0-rc.1";

/// The master key, as the file holds it less one trailing newline.
pub struct EncryptionKey(String);

impl std::fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EncryptionKey(..)")
    }
}

impl EncryptionKey {
    /// Reads the key from `path`: UTF-8 text, one trailing `\n` (or `\r\n`) dropped, not empty.
    pub fn read(path: &Path) -> Result<Self, Failure> {
        let bytes = std::fs::read(path).map_err(|e| {
            Failure::io(
                &format!("cannot read the encryption key file {}", path.display()),
                &e,
            )
        })?;
        let text = String::from_utf8(bytes).map_err(|_| {
            Failure::new(
                Kind::InvalidInput,
                format!(
                    "the encryption key file {} is not UTF-8 text",
                    path.display()
                ),
            )
        })?;
        let key = strip_one_newline(&text);
        if key.trim().is_empty() {
            return Err(Failure::new(
                Kind::InvalidInput,
                format!("the encryption key file {} holds no key", path.display()),
            ));
        }
        Ok(EncryptionKey(key.to_string()))
    }

    /// The `wasi:config/store` values that carry it.
    pub fn config(&self) -> Vec<(String, String)> {
        vec![(KEY_NAME.to_string(), self.0.clone())]
    }
}

/// The key `--encryption-key-file` names, if it is given.
pub fn key(global: &Global) -> Result<Option<EncryptionKey>, Failure> {
    global
        .encryption_key_file
        .as_deref()
        .map(EncryptionKey::read)
        .transpose()
}

/// `text` without one trailing `\n` or `\r\n` (what editors and `echo` add).
pub fn strip_one_newline(text: &str) -> &str {
    text.strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text)
}

/// Refuses a `--component` that does not import `wasi:config/store`: it would never see the
/// key, and would store items unencrypted.
pub fn check_reads_config(host: &Host, component: &Path) -> Result<(), Failure> {
    if host.imports().iter().any(|i| i == CONFIG_STORE) {
        return Ok(());
    }
    Err(Failure::new(
        Kind::Usage,
        format!(
            "{} does not import {CONFIG_STORE}, so it cannot receive the encryption key: pass \
             the encryption middleware composed with the session component (wac plug \
             dapr_session_encrypt.wasm --plug dapr_session.wasm), or drop --component to use \
             the embedded pair",
            component.display()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_trailing_newline_is_dropped() {
        assert_eq!(strip_one_newline("key\n"), "key");
        assert_eq!(strip_one_newline("key\r\n"), "key");
        assert_eq!(strip_one_newline("key\n\n"), "key\n");
        assert_eq!(strip_one_newline("key "), "key ");
        assert_eq!(strip_one_newline("key"), "key");
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key = EncryptionKey("s3cr3t".into());
        assert!(!format!("{key:?}").contains("s3cr3t"));
    }
}
