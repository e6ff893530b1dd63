//! Python's `base64.urlsafe_b64decode`, quirks included.
//!
//! Python decodes keys and Fernet tokens with `urlsafe_b64decode`, which is far more lenient
//! than RFC 4648: it maps `-`/`_` onto `+`/`/` (so both alphabets decode), skips every byte
//! outside the alphabet, ignores a `=` that cannot end a quad, stops at the first padding that
//! completes one (whatever follows), and leaves unused low bits unchecked, but still refuses
//! input whose data characters do not form whole quads ("Incorrect padding"). Keys and tokens
//! that Python accepts must mean the same bytes here, so this is CPython's non-strict
//! `binascii.a2b_base64` loop, step for step.

/// Why Python's decoder refuses the input (it raises `binascii.Error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// One data character more than a multiple of four: no encoder can produce that.
    #[error("invalid base64: one character more than a multiple of four")]
    InvalidLength,
    /// The last quad is incomplete and not closed by enough `=`.
    #[error("invalid base64: incorrect padding")]
    IncorrectPadding,
}

/// Decodes `input` as `base64.urlsafe_b64decode` does when given bytes.
///
/// (Given a `str`, Python first refuses anything that is not ASCII; [`crate::key`] checks that
/// itself.)
pub fn urlsafe_b64decode(input: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::with_capacity(input.len() / 4 * 3 + 3);
    let mut quad_pos = 0u8;
    let mut left = 0u8;
    let mut pads = 0u8;
    for &byte in input {
        if byte == b'=' {
            // CPython: `if (quad_pos >= 2 && quad_pos + ++pads >= 4) goto done;` (pads only
            // counts once two data characters of the quad are in).
            if quad_pos >= 2 {
                pads += 1;
                if quad_pos + pads >= 4 {
                    return Ok(out);
                }
            }
            continue;
        }
        let Some(value) = sextet(byte) else {
            continue;
        };
        pads = 0;
        match quad_pos {
            0 => {
                left = value;
                quad_pos = 1;
            }
            1 => {
                out.push((left << 2) | (value >> 4));
                left = value & 0x0f;
                quad_pos = 2;
            }
            2 => {
                out.push((left << 4) | (value >> 2));
                left = value & 0x03;
                quad_pos = 3;
            }
            _ => {
                out.push((left << 6) | value);
                left = 0;
                quad_pos = 0;
            }
        }
    }
    match quad_pos {
        0 => Ok(out),
        1 => Err(DecodeError::InvalidLength),
        _ => Err(DecodeError::IncorrectPadding),
    }
}

/// The value of one character after Python's `-`→`+`, `_`→`/` translation.
fn sextet(byte: u8) -> Option<u8> {
    match byte {
        b'A'..=b'Z' => Some(byte - b'A'),
        b'a'..=b'z' => Some(byte - b'a' + 26),
        b'0'..=b'9' => Some(byte - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE;

    #[test]
    fn canonical_input_round_trips() {
        for len in 0..70 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let text = URL_SAFE.encode(&bytes);
            assert_eq!(urlsafe_b64decode(text.as_bytes()), Ok(bytes));
        }
    }

    #[test]
    fn python_quirks() {
        // Outside-the-alphabet bytes are skipped, both alphabets decode.
        assert_eq!(urlsafe_b64decode(b"Q U\nJ*D"), Ok(b"ABC".to_vec()));
        assert_eq!(urlsafe_b64decode(b"-_+/"), urlsafe_b64decode(b"+/-_"));
        // Padding: required, ends decoding, ignored where it cannot end a quad.
        assert_eq!(urlsafe_b64decode(b"QQ"), Err(DecodeError::IncorrectPadding));
        assert_eq!(
            urlsafe_b64decode(b"QQ="),
            Err(DecodeError::IncorrectPadding)
        );
        assert_eq!(urlsafe_b64decode(b"QQ=="), Ok(b"A".to_vec()));
        assert_eq!(urlsafe_b64decode(b"QQ==junk"), Ok(b"A".to_vec()));
        assert_eq!(urlsafe_b64decode(b"=Q=Q=="), Ok(b"A".to_vec()));
        assert_eq!(urlsafe_b64decode(b"QUJD===="), Ok(b"ABC".to_vec()));
        assert_eq!(urlsafe_b64decode(b"QUJDR"), Err(DecodeError::InvalidLength));
        // A data character resets the pad count; unused low bits are not checked.
        assert_eq!(urlsafe_b64decode(b"QQ=x="), Ok(vec![0x41, 0x0c]));
        assert_eq!(urlsafe_b64decode(b"QR=="), Ok(b"A".to_vec()));
        assert_eq!(urlsafe_b64decode(b""), Ok(Vec::new()));
        assert_eq!(urlsafe_b64decode("é".as_bytes()), Ok(Vec::new()));
    }
}
