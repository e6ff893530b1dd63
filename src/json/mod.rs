//! JSON, read and written by hand for the few shapes the component exchanges with the
//! sidecar and stores: a general-purpose JSON library (serde) roughly doubled the component's
//! size, and the hosts that load it pay for every byte.
//!
//! - [`read`]: a strict reader (RFC 8259) that checks as it goes;
//! - [`write`]: escaping, numbers, objects and arrays into a `String`.

pub mod read;
pub mod write;

pub use read::{MAX_DEPTH, Reader, is_value};
