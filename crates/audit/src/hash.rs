use base64::Engine as _;
use ring::digest::{Context, SHA256};

use crate::AuditError;

/// A SHA-256 digest: leaf hashes, interior node hashes and tree roots.
pub type Hash = [u8; 32];

fn finish(ctx: Context) -> Hash {
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// `SHA-256(0x00 || data)` (RFC 9162 §2.1.1). The prefix keeps a leaf from ever
/// being passed off as an interior node (second-preimage resistance).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut ctx = Context::new(&SHA256);
    ctx.update(&[0x00]);
    ctx.update(data);
    finish(ctx)
}

/// `SHA-256(0x01 || left || right)` (RFC 9162 §2.1.1): an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut ctx = Context::new(&SHA256);
    ctx.update(&[0x01]);
    ctx.update(left);
    ctx.update(right);
    finish(ctx)
}

/// The root of the empty tree, `SHA-256("")` (RFC 9162 §2.1.1).
pub fn empty_root() -> Hash {
    finish(Context::new(&SHA256))
}

/// Standard base64 (with padding), the encoding of hashes in checkpoints and
/// exports, as in RFC 6962's JSON API.
pub fn encode_hash(hash: &Hash) -> String {
    base64::engine::general_purpose::STANDARD.encode(hash)
}

/// Parses [`encode_hash`]'s output; anything that is not exactly 32 bytes of
/// standard base64 is rejected rather than truncated or padded.
pub fn decode_hash(s: &str) -> Result<Hash, AuditError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| AuditError::BadHashEncoding(format!("not base64: {e}")))?;
    <Hash>::try_from(bytes.as_slice())
        .map_err(|_| AuditError::BadHashEncoding(format!("{} bytes instead of 32", bytes.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_encoding_round_trips_and_is_strict() {
        let h = leaf_hash(b"x");
        assert_eq!(decode_hash(&encode_hash(&h)).unwrap(), h);
        assert!(matches!(
            decode_hash("AAAA"),
            Err(AuditError::BadHashEncoding(_))
        ));
        assert!(matches!(
            decode_hash("not base64!"),
            Err(AuditError::BadHashEncoding(_))
        ));
    }
}
