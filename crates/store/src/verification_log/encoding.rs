//! How the log's values are stored: hashes as lowercase hex TEXT (one
//! portable schema for SQLite and PostgreSQL), seqs and sizes as BIGINT, event
//! bodies as canonical JSON.

use audit::Hash;

use crate::error::StoreError;

/// A hash as stored: 64 lowercase hex digits.
pub(crate) fn to_hex(hash: &Hash) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(64);
    for b in hash {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// Parses exactly 64 lowercase hex digits (the only form the store writes).
pub(crate) fn from_hex(s: &str) -> Option<Hash> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// Decodes a checkpoint's root (standard base64, `audit::encode_hash`).
pub(crate) fn decode_root(b64: &str) -> Option<Hash> {
    audit::decode_hash(b64).ok()
}

/// A seq, size or node index as stored (BIGINT).
pub(crate) fn to_i64(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::InvalidInput(format!("{n} is out of range")))
}

/// A node level as stored (INTEGER).
pub(crate) fn to_i32(n: u32) -> Result<i32, StoreError> {
    i32::try_from(n).map_err(|_| StoreError::InvalidInput(format!("{n} is out of range")))
}

/// `audit_head.size` as a count; `None` (no head row) and negative sizes are
/// damage.
pub(crate) fn head_size(size: Option<i64>) -> Result<u64, StoreError> {
    let size = size.ok_or_else(|| StoreError::Corrupt("audit_head has no row".into()))?;
    u64::try_from(size)
        .map_err(|_| StoreError::Corrupt(format!("audit_head size {size} is negative")))
}

/// A stored seq (or tree size) as a count.
pub(crate) fn stored_seq(seq: i64) -> Result<u64, StoreError> {
    u64::try_from(seq).map_err(|_| StoreError::Corrupt(format!("negative audit seq {seq}")))
}

/// Decodes a stored body; names the seq and the error position, never the content.
pub(crate) fn decode_event(seq: i64, body: &str) -> Result<audit::Event, StoreError> {
    serde_json::from_str(body).map_err(|e| {
        StoreError::Corrupt(format!(
            "audit event {seq} does not decode: {:?} error at column {}",
            e.classify(),
            e.column()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let h: Hash = std::array::from_fn(|i| (i * 7) as u8);
        let s = to_hex(&h);
        assert_eq!(s.len(), 64);
        assert_eq!(s, s.to_lowercase());
        assert_eq!(from_hex(&s), Some(h));
        assert_eq!(from_hex(&s.to_uppercase()), None);
        assert_eq!(from_hex(&s[1..]), None);
    }
}
