//! `import` and `export`: a whole session from and to a JSON array or JSON Lines.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use dapr_session_host::{CallError, Host, SessionError};
use serde_json::json;

use crate::cli::Global;
use crate::connect::Session;
use crate::exit::Kind;
use crate::failure::Failure;
use crate::items::{self, Format, Parsed};
use crate::output::{Output, json_array, json_lines};
use crate::progress::{Progress, count, plural};

/// What `import` reads: every item of the input, checked.
pub struct Input {
    /// The input's name in messages: the file name, or `stdin`.
    name: String,
    /// The items.
    parsed: Parsed,
}

impl Input {
    /// The items, each a checked JSON object's text.
    pub fn items(&self) -> &[String] {
        &self.parsed.items
    }
}

/// Reads and checks every item of `input` (a file, or `-` for stdin) for a command that
/// writes them (`verb` is its past participle: "imported", "replaced"), before anything is
/// written: the first bad item fails the whole command.
pub fn read(input: &Path, verb: &str) -> Result<Input, Failure> {
    let (name, text) = read_input(input, verb)?;
    let parsed = items::parse(&text).map_err(|bad| {
        let failure = Failure::new(
            Kind::InvalidInput,
            format!("{name}: {bad}; nothing was {verb}"),
        )
        .with("line", bad.line)
        .with(verb, 0);
        match bad.index {
            Some(i) => failure.with("item_index", i),
            None => failure,
        }
    })?;
    Ok(Input { name, parsed })
}

/// `import`: appends the items of `input` to session `id` in batches of `batch_size`, with a
/// status line on stderr.
pub async fn import(
    host: &Host,
    global: &Global,
    id: &str,
    input: Input,
    batch_size: u32,
    out: &Output,
) -> Result<Kind, Failure> {
    let Input { name, parsed } = input;
    let total = parsed.items.len();
    if total == 0 {
        out.result(
            &json!({"imported": 0, "total": 0, "batches": 0, "session": id}),
            &format!("nothing to import: {name} holds no items"),
        )?;
        return Ok(Kind::Success);
    }
    let key = crate::encryption::key(global)?;
    let mut s = Session::open(host, global, id, key.as_ref()).await?;
    let batch = usize::try_from(batch_size).unwrap_or(usize::MAX).max(1);
    let mut progress = Progress::new("importing", total, out.notes());
    progress.update(0);
    let (mut done, mut batches) = (0, 0);
    for chunk in parsed.items.chunks(batch) {
        if let Err(e) = s.add_items(chunk).await {
            progress.clear();
            return Err(batch_failed(&s, &e, &name, &parsed, done, chunk.len()));
        }
        done += chunk.len();
        batches += 1;
        progress.update(done);
    }
    progress.clear();
    if out.is_json() {
        out.value(&json!({
            "imported": total,
            "total": total,
            "batches": batches,
            "format": parsed.format.name(),
            "session": id,
        }))?;
    } else {
        out.note(&format!(
            "imported {} ({}) into session '{id}' in {} batch{}",
            plural(total, "item"),
            match parsed.format {
                Format::Array => "JSON array",
                Format::Lines => "JSON Lines",
            },
            count(batches),
            if batches == 1 { "" } else { "es" }
        ));
    }
    Ok(Kind::Success)
}

/// The failure of the batch after the first `done` items: the error, and exactly what was
/// stored before it.
fn batch_failed(
    s: &Session,
    e: &CallError,
    name: &str,
    parsed: &Parsed,
    done: usize,
    batch_len: usize,
) -> Failure {
    let total = parsed.items.len();
    let mut failure = match e {
        // The component names the item by its index in the batch; name it in the input.
        CallError::Session(SessionError::InvalidInput(ii)) if ii.item_index.is_some() => {
            let in_batch = ii.item_index.and_then(|i| usize::try_from(i).ok());
            let index = done + in_batch.unwrap_or_default();
            let line = parsed.lines.get(index).copied().unwrap_or_default();
            Failure::new(
                Kind::InvalidInput,
                format!("{name}: item {index} (line {line}): {}", ii.message),
            )
            .with("item_index", index)
            .with("line", line)
        }
        _ => s.fail(e),
    };
    let uncertain = if may_have_landed(e) { batch_len } else { 0 };
    let rest = total - done - uncertain;
    let status = match (done, uncertain) {
        (0, 0) => "nothing was imported".to_string(),
        (_, 0) => format!(
            "imported {} of {} before the failure: those are stored, the other {} are not",
            count(done),
            plural(total, "item"),
            count(rest)
        ),
        _ => format!(
            "imported {} of {} before the failure: those are stored; the batch of {} after them \
             (items {done}-{}) may or may not have been stored (the request did not complete); \
             the other {} are not",
            count(done),
            plural(total, "item"),
            count(uncertain),
            done + uncertain - 1,
            count(rest)
        ),
    };
    failure.message = format!("{}\n{status}", failure.message);
    failure
        .with("imported", done)
        .with("total", total)
        .with("uncertain", uncertain)
}

/// Whether a failed `add-items` may still have been applied: the request was sent but its
/// answer never came.
fn may_have_landed(e: &CallError) -> bool {
    matches!(
        e,
        CallError::Trap(_)
            | CallError::Session(
                SessionError::Timeout | SessionError::Interrupted(_) | SessionError::Protocol(_)
            )
    )
}

/// The text of `input` (`-` is stdin) and the name to call it in messages.
fn read_input(input: &Path, verb: &str) -> Result<(String, String), Failure> {
    let (name, bytes) = if input == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| Failure::io("reading stdin", &e))?;
        ("stdin".to_string(), bytes)
    } else {
        let name = input.display().to_string();
        let bytes =
            std::fs::read(input).map_err(|e| Failure::io(&format!("reading {name}"), &e))?;
        (name, bytes)
    };
    match String::from_utf8(bytes) {
        Ok(text) => Ok((name, text)),
        Err(e) => Err(Failure::new(
            Kind::InvalidInput,
            format!(
                "{name} is not UTF-8 text (invalid byte at offset {}); nothing was {verb}",
                e.utf8_error().valid_up_to()
            ),
        )),
    }
}

/// `export`: every item of session `id`, as a JSON array (JSON Lines with `jsonl`), to stdout
/// or atomically to `to`.
pub async fn export(
    host: &Host,
    global: &Global,
    id: &str,
    to: Option<&Path>,
    jsonl: bool,
    out: &Output,
) -> Result<Kind, Failure> {
    let key = crate::encryption::key(global)?;
    let mut s = Session::open(host, global, id, key.as_ref()).await?;
    let mut progress = Progress::new("exporting", 0, out.notes());
    progress.note(&format!("exporting session '{id}'…"));
    let items = s.get_items(None).await.map_err(|e| s.fail(&e))?;
    progress.clear();
    let text = if jsonl {
        json_lines(&items)
    } else {
        json_array(&items, true)
    };
    let what = plural(items.len(), "item");
    match to.filter(|p| *p != Path::new("-")) {
        Some(path) => {
            write_atomically(path, text.as_bytes())
                .map_err(|e| Failure::io(&format!("writing {}", path.display()), &e))?;
            if out.is_json() {
                out.value(&json!({
                    "exported": items.len(),
                    "session": id,
                    "out": path.display().to_string(),
                    "format": if jsonl { "jsonl" } else { "json" },
                }))?;
            }
            out.note(&format!(
                "exported {what} from session '{id}' to {}",
                path.display()
            ));
        }
        None => {
            out.raw(text.as_bytes())?;
            out.note(&format!("exported {what} from session '{id}'"));
        }
    }
    Ok(Kind::Success)
}

/// Replaces `path` with `data` all at once: writes a temporary file next to it, syncs it, and
/// renames it over `path`. On failure the temporary file is removed and `path` is untouched.
fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let file_name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"))?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let written = std::fs::File::create(&tmp).and_then(|mut file| {
        file.write_all(data)?;
        file.sync_all()
    });
    let result = written.and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::write_atomically;

    #[test]
    fn atomic_write_replaces_the_file_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("dapr-session-cli-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("out.json");
        assert!(write_atomically(&path, b"old").is_ok());
        assert!(write_atomically(&path, b"new").is_ok());
        assert_eq!(std::fs::read(&path).ok(), Some(b"new".to_vec()));
        let names: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert_eq!(names, vec![std::ffi::OsString::from("out.json")]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
