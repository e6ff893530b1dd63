//! The suite through the encryption middleware: with `SUITE_ENCRYPTED=1` every instance is
//! the middleware (`dapr-session-encrypt`) composed with the session component, a key in its
//! `wasi:config/store`, so every case checks that the middleware is a session like any other.
//!
//! Cases that look beneath the interface (stored bytes, request counts and sizes, data planted
//! or corrupted in the store) cannot apply through encryption: the middleware stores envelopes,
//! not the items, and its reads may take more requests. They are skipped with their reason.

use dapr_session_host_tests::host::{Host, Layout};

use crate::harness::Case;

/// The environment variable that turns the mode on (`1` or `true`).
pub const ENV: &str = "SUITE_ENCRYPTED";

/// The master key of the suite's middleware (a Fernet key: URL-safe base64 of 32 bytes).
const KEY: &str = "c3VpdGUga2V5IGZvciB0aGUgZW5jcnlwdGlvbiBtb2Q=";

/// Whether [`ENV`] asks for the middleware.
pub fn enabled() -> bool {
    std::env::var(ENV).is_ok_and(|v| v == "1" || v == "true")
}

/// The middleware composed with the component under test.
pub fn host() -> anyhow::Result<Host> {
    Host::encrypted(&[("encryption_key", KEY)])
}

/// Why a case (its `module::function` name) cannot run through the middleware with `layout`,
/// if it cannot.
pub fn skip_reason(case: &str, layout: Layout) -> Option<&'static str> {
    SKIPPED
        .iter()
        .find(|(name, only, _)| *name == case && only.is_none_or(|l| l == layout))
        .map(|(_, _, why)| *why)
}

/// Skip entries that name no case of `cases` (renamed or removed cases).
pub fn unknown(cases: &[Case]) -> Vec<&'static str> {
    SKIPPED
        .iter()
        .map(|(name, _, _)| *name)
        .filter(|name| cases.iter().all(|c| c.name != *name))
        .collect()
}

/// Data written straight into the store (plaintext items, older formats, corrupt values).
const PLANTED: &str = "plants items or corrupt values straight into the store: the middleware returns only \
     envelopes its key authenticates, and a pop that finds nothing readable writes nothing, so \
     it answers none where the plain component's write meets the corrupt error";
/// The stored bytes compared with the items.
const STORED: &str = "compares the stored bytes with the items: the middleware stores envelopes";
/// Requests or bytes counted.
const COUNTED: &str = "counts requests or stored bytes: a pop through the middleware reads before its \
     conditional write, and an envelope is about 4/3 of its item plus 100 bytes";

/// Cases skipped through the middleware (for one layout, or both), and why.
const SKIPPED: &[(&str, Option<Layout>, &str)] = &[
    ("bad_input::lone_surrogate_escapes_round_trip", None, STORED),
    (
        "bad_input::ten_mib_item",
        None,
        "its 3.5 MiB item is the largest one request carries; sealed, an item grows by a third \
         (base64 of the ciphertext), so through the middleware the largest is about 2.9 MiB",
    ),
    (
        "bad_input::tenant_prefixes_cannot_collide",
        None,
        "it shows that an unprefixed id with ':' aliases a prefixed session's keys; the \
         middleware salts each session's key with its id, so the alias reads nothing",
    ),
    ("chunks::corrupt_head_is_never_overwritten", None, PLANTED),
    ("chunks::log_layout_keys", None, STORED),
    ("chunks::reads_and_pops_across_chunks", None, STORED),
    (
        "compaction::compat_replace_is_one_guarded_write",
        None,
        STORED,
    ),
    (
        "concurrency::add_retries_on_conflict",
        None,
        "its competing writer appends a plaintext item straight to the store, which the \
         middleware never returns",
    ),
    (
        "concurrency::pop_retries_on_conflict",
        None,
        "its competing writer appends a plaintext item straight to the store, which the \
         middleware never returns or pops",
    ),
    ("corrupt::compat_mixed_entries", None, PLANTED),
    ("corrupt::compat_number_out_of_float_range", None, PLANTED),
    ("corrupt::main_key_not_json_or_wrong_kind", None, PLANTED),
    ("corrupt_chunk::log_chunk_corrupt", None, STORED),
    ("corrupt_chunk::log_chunk_entries_corrupt", None, STORED),
    (
        "corrupt_chunk::log_head_points_at_missing_chunks",
        None,
        STORED,
    ),
    (
        "corrupt_head::log_chunk_refs_naming_other_sessions_keys_are_refused",
        None,
        STORED,
    ),
    (
        "corrupt_head::log_head_claiming_too_many_items",
        None,
        PLANTED,
    ),
    (
        "corrupt_head::log_head_lists_chunks_never_written",
        None,
        PLANTED,
    ),
    ("corrupt_head::log_head_wrong_shapes", None, PLANTED),
    (
        "corrupt_head::log_trash_outside_the_session_is_refused",
        None,
        STORED,
    ),
    ("corrupt_head::log_v1_head_wrong_shapes", None, PLANTED),
    (
        "legacy::copies_disagreeing_with_the_head_are_ignored",
        None,
        PLANTED,
    ),
    (
        "legacy::entries_naming_other_sessions_keys_are_refused",
        None,
        PLANTED,
    ),
    (
        "legacy::missing_and_corrupt_keys_are_skipped",
        None,
        PLANTED,
    ),
    ("legacy::paged_session_migrates", None, PLANTED),
    ("legacy::small_session_migrates", None, PLANTED),
    ("legacy::two_level_session_migrates", None, PLANTED),
    (
        "retention::max_items_under_concurrent_writers_keeps_storage_flat",
        None,
        COUNTED,
    ),
    ("scale::fresh_instance_per_operation", None, COUNTED),
    ("scale::round_trips_per_operation", None, COUNTED),
    ("stored::already_deserialized_messages", None, PLANTED),
    (
        "stored::corrupt_aggregate_is_never_overwritten",
        None,
        PLANTED,
    ),
    ("stored::layout_matches_python", None, STORED),
    ("stored::limit_skips_corrupt_newest_entries", None, PLANTED),
    ("stored::pop_skips_corrupt_most_recent", None, PLANTED),
    ("stored::python_written_items_are_read", None, PLANTED),
    (
        "stored::raw_bytes_aggregate_is_never_overwritten",
        None,
        PLANTED,
    ),
    (
        "writers::ambiguous_commit_is_not_applied_twice",
        None,
        STORED,
    ),
    ("writers::clear_racing_add_is_all_or_nothing", None, STORED),
    (
        "writers::many_writers_keep_batches_contiguous",
        None,
        STORED,
    ),
];
