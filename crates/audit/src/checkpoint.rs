use serde::{Deserialize, Serialize};

use crate::hash::{decode_hash, encode_hash, Hash};
use crate::AuditError;

/// JWS header `typ` of a checkpoint, so no other token the hub signs (an ID
/// token, a request object) can be passed off as a checkpoint, nor the reverse.
pub const CHECKPOINT_JWS_TYP: &str = "checkpoint+jwt";

/// `typ` claim inside the signed payload: a second, payload-level marker for
/// verifiers that do not look at the header.
pub const CHECKPOINT_PAYLOAD_TYP: &str = "checkpoint";

/// `exp` of every checkpoint: 9999-12-31T23:59:59Z.
///
/// A checkpoint is a permanent statement (auditors verify old exports years
/// later), but `token::VerificationKeys::verify` requires `exp`. Rather than
/// a second verifier, checkpoints carry the largest RFC 3339 time; nothing in
/// verification relies on it. Key rotation, not expiry, retires a signature.
pub const CHECKPOINT_EXP: u64 = 253_402_300_799;

/// A signed statement of the log's state: its size and root at `time`.
///
/// `signature` is a compact JWS (ES256, header `typ` [`CHECKPOINT_JWS_TYP`])
/// over `{typ, tree_size, root_hash, time, exp}`; the plain fields are there so
/// a reader need not decode it, and [`Checkpoint::verify`] checks they match.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Number of events in the log.
    pub tree_size: u64,
    /// Root of the first `tree_size` events, standard base64.
    pub root_hash: String,
    /// When it was signed: RFC 3339 UTC.
    pub time: String,
    /// Compact JWS over the fields above.
    pub signature: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Claims {
    typ: String,
    tree_size: u64,
    root_hash: String,
    time: String,
    exp: u64,
}

impl Checkpoint {
    /// Signs the log state with the hub's key (`sign_typed` with
    /// [`CHECKPOINT_JWS_TYP`]). `time` should be RFC 3339 UTC (see
    /// [`crate::rfc3339_now`]); it is signed as given.
    pub fn sign(
        tree_size: u64,
        root: &Hash,
        time: String,
        key: &token::SigningKey,
    ) -> Result<Self, AuditError> {
        let root_hash = encode_hash(root);
        let claims = Claims {
            typ: CHECKPOINT_PAYLOAD_TYP.to_owned(),
            tree_size,
            root_hash: root_hash.clone(),
            time: time.clone(),
            exp: CHECKPOINT_EXP,
        };
        let signature = key
            .sign_typed(&claims, CHECKPOINT_JWS_TYP)
            .map_err(AuditError::CheckpointSigning)?;
        Ok(Self {
            tree_size,
            root_hash,
            time,
            signature,
        })
    }

    /// Verifies the signature with `keys` (the hub's JWKS), checks that it is
    /// a checkpoint and that the signed payload equals the plain fields, and
    /// returns the root. Only a root obtained here may be trusted.
    pub fn verify(&self, keys: &token::VerificationKeys) -> Result<Hash, AuditError> {
        let expect = token::Expect {
            issuer: None,
            audience: Vec::new(),
            leeway_secs: 0,
        };
        let claims: Claims = keys.verify(&self.signature, &expect).map_err(|e| match e {
            token::TokenError::InvalidClaims(reason) => {
                AuditError::CheckpointMalformed(format!("payload is not a checkpoint: {reason}"))
            }
            other => AuditError::CheckpointSignature(other),
        })?;
        // The header is covered by the signature just verified.
        let typ = token::unverified_typ(&self.signature);
        if typ.as_deref() != Some(CHECKPOINT_JWS_TYP) {
            return Err(AuditError::CheckpointMalformed(format!(
                "header typ is {typ:?}, not {CHECKPOINT_JWS_TYP:?}"
            )));
        }
        if claims.typ != CHECKPOINT_PAYLOAD_TYP {
            return Err(AuditError::CheckpointMalformed(format!(
                "payload typ is {:?}",
                claims.typ
            )));
        }
        if claims.tree_size != self.tree_size {
            return Err(AuditError::CheckpointMismatch { field: "tree_size" });
        }
        if claims.root_hash != self.root_hash {
            return Err(AuditError::CheckpointMismatch { field: "root_hash" });
        }
        if claims.time != self.time {
            return Err(AuditError::CheckpointMismatch { field: "time" });
        }
        decode_hash(&claims.root_hash)
            .map_err(|e| AuditError::CheckpointMalformed(format!("root_hash: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leaf_hash;
    use base64::Engine as _;

    fn setup() -> (token::SigningKey, token::VerificationKeys) {
        let key = token::SigningKey::generate().unwrap();
        let keys = token::VerificationKeys::from_jwks(&key.jwks()).unwrap();
        (key, keys)
    }

    fn checkpoint(key: &token::SigningKey) -> (Checkpoint, Hash) {
        let root = leaf_hash(b"root");
        let cp = Checkpoint::sign(42, &root, "2025-03-01T10:15:30.123Z".into(), key).unwrap();
        (cp, root)
    }

    #[test]
    fn round_trip() {
        let (key, keys) = setup();
        let (cp, root) = checkpoint(&key);
        assert_eq!(cp.root_hash, encode_hash(&root));
        assert_eq!(cp.verify(&keys).unwrap(), root);
        // Survives JSON (how checkpoints are stored and published).
        let back: Checkpoint = serde_json::from_str(&serde_json::to_string(&cp).unwrap()).unwrap();
        assert_eq!(back.verify(&keys).unwrap(), root);
    }

    #[test]
    fn tampered_fields_rejected() {
        let (key, keys) = setup();
        let (cp, _) = checkpoint(&key);
        let bigger = Checkpoint {
            tree_size: 43,
            ..cp.clone()
        };
        assert!(matches!(
            bigger.verify(&keys),
            Err(AuditError::CheckpointMismatch { field: "tree_size" })
        ));
        let other_root = Checkpoint {
            root_hash: encode_hash(&leaf_hash(b"forged")),
            ..cp.clone()
        };
        assert!(matches!(
            other_root.verify(&keys),
            Err(AuditError::CheckpointMismatch { field: "root_hash" })
        ));
        let later = Checkpoint {
            time: "2025-03-02T10:15:30.123Z".into(),
            ..cp.clone()
        };
        assert!(matches!(
            later.verify(&keys),
            Err(AuditError::CheckpointMismatch { field: "time" })
        ));
        // Rewriting the payload breaks the signature.
        let parts: Vec<&str> = cp.signature.split('.').collect();
        let forged = Claims {
            typ: CHECKPOINT_PAYLOAD_TYP.into(),
            tree_size: 43,
            root_hash: cp.root_hash.clone(),
            time: cp.time.clone(),
            exp: CHECKPOINT_EXP,
        };
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&forged).unwrap());
        let resigned = Checkpoint {
            tree_size: 43,
            signature: format!("{}.{}.{}", parts[0], payload, parts[2]),
            ..cp.clone()
        };
        assert!(matches!(
            resigned.verify(&keys),
            Err(AuditError::CheckpointSignature(
                token::TokenError::BadSignature
            ))
        ));
    }

    #[test]
    fn wrong_key_rejected() {
        let (key, _) = setup();
        let (_, other_keys) = setup();
        let (cp, _) = checkpoint(&key);
        assert!(matches!(
            cp.verify(&other_keys),
            Err(AuditError::CheckpointSignature(_))
        ));
    }

    #[test]
    fn other_tokens_of_the_same_key_are_not_checkpoints() {
        let (key, keys) = setup();
        let (cp, _) = checkpoint(&key);
        let claims = Claims {
            typ: CHECKPOINT_PAYLOAD_TYP.into(),
            tree_size: cp.tree_size,
            root_hash: cp.root_hash.clone(),
            time: cp.time.clone(),
            exp: CHECKPOINT_EXP,
        };
        // Same payload, ordinary JWT header typ.
        let as_jwt = Checkpoint {
            signature: key.sign(&claims).unwrap(),
            ..cp.clone()
        };
        assert!(matches!(
            as_jwt.verify(&keys),
            Err(AuditError::CheckpointMalformed(_))
        ));
        // An ID-token-like payload with the checkpoint header.
        let id_token = Checkpoint {
            signature: key
                .sign_typed(
                    &serde_json::json!({"iss": "hub", "sub": "x", "exp": CHECKPOINT_EXP}),
                    CHECKPOINT_JWS_TYP,
                )
                .unwrap(),
            ..cp
        };
        assert!(matches!(
            id_token.verify(&keys),
            Err(AuditError::CheckpointMalformed(_))
        ));
    }
}
