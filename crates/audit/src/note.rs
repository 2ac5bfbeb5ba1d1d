//! Checkpoints as C2SP signed notes (<https://c2sp.org/tlog-checkpoint>,
//! <https://c2sp.org/signed-note>): the text form that independent witnesses
//! and monitors (Go's `sumdb/note`, sigsum, litewitness...) verify and
//! cosign, so that a log showing different trees to different auditors is
//! caught by third parties, not only by the hub's own JWS checkpoints.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::digest::{digest, SHA256};
use ring::signature::{UnparsedPublicKey, ED25519};

use crate::hash::{decode_hash, encode_hash, Hash};
use crate::AuditError;

/// Signature type byte of Ed25519 in key IDs and verifier keys.
const ED25519_TYPE: u8 = 0x01;

/// Signature lines accepted per note (the spec requires at least 16; Go's
/// `note.Open` stops at 100): enough for many witnesses, bounded work.
const MAX_SIGNATURES: usize = 100;

/// Starts every signature line: em dash (U+2014) and a space.
const SIG_PREFIX: &str = "\u{2014} ";

/// A signed-note key name: non-empty, no Unicode space, no `+` (the verifier
/// key separator), no ASCII control character (notes must not contain any).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyName(String);

impl KeyName {
    /// Checks `name` against the signed-note rules.
    pub fn new(name: &str) -> Result<Self, AuditError> {
        if name.is_empty() {
            return Err(AuditError::NoteKey("key name is empty".into()));
        }
        if name
            .chars()
            .any(|c| c.is_whitespace() || c < ' ' || c == '+')
        {
            return Err(AuditError::NoteKey(format!(
                "key name {name:?} contains a space, control character or '+'"
            )));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as it appears in signature lines.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `SHA-256(name || 0x0A || 0x01 || public key)[:4]`: which key (and
/// algorithm) made a signature, so verifiers skip the lines of other keys.
fn key_id(name: &KeyName, public_key: &[u8]) -> [u8; 4] {
    let mut input = Vec::with_capacity(name.0.len() + 2 + public_key.len());
    input.extend_from_slice(name.0.as_bytes());
    input.extend_from_slice(&[b'\n', ED25519_TYPE]);
    input.extend_from_slice(public_key);
    let sum = digest(&SHA256, &input);
    let mut id = [0u8; 4];
    id.copy_from_slice(&sum.as_ref()[..4]);
    id
}

/// The log's Ed25519 note-signing key and its name.
pub struct NoteSigner {
    name: KeyName,
    id: [u8; 4],
    key: token::Ed25519Key,
}

impl fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("key_id", &hex_id(self.id))
            .finish_non_exhaustive()
    }
}

impl NoteSigner {
    /// Signs with `key` under `name`, which should be the log's origin.
    pub fn new(name: &str, key: token::Ed25519Key) -> Result<Self, AuditError> {
        let name = KeyName::new(name)?;
        let id = key_id(&name, &key.public_key());
        Ok(Self { name, id, key })
    }

    /// The key name (the log's origin).
    pub fn name(&self) -> &KeyName {
        &self.name
    }

    /// The matching verifier, as witnesses configure it.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            id: self.id,
            public_key: self.key.public_key(),
        }
    }

    /// The verifier key to publish: `<name>+<key id hex>+<base64(0x01 || public key)>`.
    pub fn verifier_key(&self) -> String {
        self.verifier().to_string()
    }

    /// `— <name> <base64(key id || signature)>\n` over `text`.
    fn signature_line(&self, text: &str) -> String {
        let mut blob = self.id.to_vec();
        blob.extend_from_slice(&self.key.sign(text.as_bytes()));
        format!("{SIG_PREFIX}{} {}\n", self.name, STANDARD.encode(blob))
    }
}

/// A trusted note-signing public key, parsed from its verifier key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteVerifier {
    name: KeyName,
    id: [u8; 4],
    public_key: [u8; 32],
}

impl NoteVerifier {
    /// Parses `<name>+<8 hex digits key id>+<base64(0x01 || public key)>`;
    /// the key ID must match the name and key, and only Ed25519 is accepted.
    pub fn parse(vkey: &str) -> Result<Self, AuditError> {
        let bad = |what: &str| AuditError::NoteKey(format!("verifier key: {what}"));
        // The name has no '+', the hex neither; the base64 may.
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(hex), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("not <name>+<key id>+<key>"));
        };
        let name = KeyName::new(name)?;
        if hex.len() != 8 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("key id is not 8 hex digits"));
        }
        let id = u32::from_str_radix(hex, 16)
            .map_err(|_| bad("key id is not 8 hex digits"))?
            .to_be_bytes();
        let key = STANDARD.decode(b64).map_err(|_| bad("key is not base64"))?;
        match key.split_first() {
            Some((&ED25519_TYPE, rest)) => {
                let public_key =
                    <[u8; 32]>::try_from(rest).map_err(|_| bad("Ed25519 key is not 32 bytes"))?;
                if key_id(&name, &public_key) != id {
                    return Err(bad("key id does not match the name and key"));
                }
                Ok(Self {
                    name,
                    id,
                    public_key,
                })
            }
            Some((other, _)) => Err(bad(&format!(
                "signature type 0x{other:02x} is not supported (only Ed25519, 0x01)"
            ))),
            None => Err(bad("key is empty")),
        }
    }

    /// The key name signature lines must carry.
    pub fn name(&self) -> &KeyName {
        &self.name
    }

    /// The 4-byte key ID signature blobs must start with.
    pub fn key_id(&self) -> [u8; 4] {
        self.id
    }

    fn verifies(&self, text: &str, signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.public_key)
            .verify(text.as_bytes(), signature)
            .is_ok()
    }
}

/// The verifier key encoding, as [`NoteVerifier::parse`] reads it.
impl fmt::Display for NoteVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut key = vec![ED25519_TYPE];
        key.extend_from_slice(&self.public_key);
        write!(
            f,
            "{}+{}+{}",
            self.name,
            hex_id(self.id),
            STANDARD.encode(key)
        )
    }
}

fn hex_id(id: [u8; 4]) -> String {
    format!("{:08x}", u32::from_be_bytes(id))
}

/// A checkpoint read from a verified note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteCheckpoint {
    /// The log's identity (first line).
    pub origin: String,
    /// Number of leaves in the tree.
    pub tree_size: u64,
    /// RFC 9162 root at `tree_size`.
    pub root: Hash,
    /// Opaque lines after the root, if any.
    pub extensions: Vec<String>,
}

/// Signs the log state as a tlog-checkpoint note: `<origin>\n<size>\n<root>\n`,
/// a blank line, then `signer`'s signature line. Witnesses can cosign it.
pub fn checkpoint_note(
    origin: &str,
    tree_size: u64,
    root: &Hash,
    signer: &NoteSigner,
) -> Result<String, AuditError> {
    if origin.is_empty() || origin.chars().any(|c| c < ' ') {
        return Err(AuditError::NoteMalformed(format!(
            "origin {origin:?} is empty or contains a newline or control character"
        )));
    }
    let body = format!("{origin}\n{tree_size}\n{}\n", encode_hash(root));
    Ok(sign_note(&body, signer))
}

/// `text` (ending in a newline), a blank line and `signer`'s signature line.
fn sign_note(text: &str, signer: &NoteSigner) -> String {
    format!("{text}\n{}", signer.signature_line(text))
}

/// Verifies that `verifier` signed `note` and parses it as a checkpoint of
/// `origin`. Signatures by other keys (witness cosignatures) are ignored.
pub fn verify_checkpoint_note(
    note: &str,
    verifier: &NoteVerifier,
    origin: &str,
) -> Result<NoteCheckpoint, AuditError> {
    let checkpoint = parse_checkpoint(open_note(note, verifier)?)?;
    if checkpoint.origin != origin {
        return Err(AuditError::NoteOrigin {
            expected: origin.to_owned(),
            found: checkpoint.origin,
        });
    }
    Ok(checkpoint)
}

fn malformed(what: impl Into<String>) -> AuditError {
    AuditError::NoteMalformed(what.into())
}

/// The note text, once every signature line is well formed, every line of
/// `verifier`'s key verifies, and there is at least one.
fn open_note<'a>(note: &'a str, verifier: &NoteVerifier) -> Result<&'a str, AuditError> {
    if note.chars().any(|c| c < ' ' && c != '\n') {
        return Err(malformed("control character other than newline"));
    }
    let split = note
        .rfind("\n\n")
        .ok_or_else(|| malformed("no blank line before the signatures"))?;
    let (text, sigs) = (&note[..=split], &note[split + 2..]);
    let sigs = sigs
        .strip_suffix('\n')
        .ok_or_else(|| malformed("signatures missing or not ending in a newline"))?;
    if sigs.split('\n').count() > MAX_SIGNATURES {
        return Err(malformed(format!("more than {MAX_SIGNATURES} signatures")));
    }
    let mut signed = false;
    for line in sigs.split('\n') {
        let (name, id, signature) = parse_signature_line(line)?;
        if name == verifier.name.as_str() && id == verifier.id {
            if !verifier.verifies(text, &signature) {
                return Err(AuditError::NoteSignature {
                    key: format!("{name}+{}", hex_id(id)),
                });
            }
            signed = true;
        }
    }
    if !signed {
        return Err(AuditError::NoteUnsigned {
            key: format!("{}+{}", verifier.name, hex_id(verifier.id)),
        });
    }
    Ok(text)
}

/// `— <name> <base64(key id || signature)>` into its name, key ID and signature.
fn parse_signature_line(line: &str) -> Result<(&str, [u8; 4], Vec<u8>), AuditError> {
    let bad = |what: &str| malformed(format!("signature line: {what}"));
    let rest = line
        .strip_prefix(SIG_PREFIX)
        .ok_or_else(|| bad("does not start with an em dash and a space"))?;
    let (name, b64) = rest
        .split_once(' ')
        .ok_or_else(|| bad("no space between key name and signature"))?;
    KeyName::new(name).map_err(|_| bad("invalid key name"))?;
    let blob = STANDARD
        .decode(b64)
        .map_err(|_| bad("signature is not base64"))?;
    if blob.len() < 5 {
        return Err(bad("signature shorter than a key id and one byte"));
    }
    let (id, signature) = blob.split_at(4);
    let id = <[u8; 4]>::try_from(id).map_err(|_| bad("no key id"))?;
    Ok((name, id, signature.to_vec()))
}

/// Origin, size and root lines, then extension lines; all non-empty.
fn parse_checkpoint(text: &str) -> Result<NoteCheckpoint, AuditError> {
    let lines: Vec<&str> = text
        .strip_suffix('\n')
        .unwrap_or(text)
        .split('\n')
        .collect();
    if lines.iter().any(|line| line.is_empty()) {
        return Err(malformed("empty line in the checkpoint"));
    }
    let [origin, size, root, extensions @ ..] = lines.as_slice() else {
        return Err(malformed("checkpoint has fewer than 3 lines"));
    };
    Ok(NoteCheckpoint {
        origin: (*origin).to_owned(),
        tree_size: parse_size(size)?,
        root: decode_hash(root).map_err(|e| malformed(format!("root hash: {e}")))?,
        extensions: extensions.iter().map(|&line| line.to_owned()).collect(),
    })
}

/// Decimal without sign or leading zeros (only `0` itself): one text per size.
fn parse_size(size: &str) -> Result<u64, AuditError> {
    let canonical =
        size.bytes().all(|b| b.is_ascii_digit()) && (size == "0" || !size.starts_with('0'));
    match size.parse() {
        Ok(n) if canonical => Ok(n),
        _ => Err(malformed(format!(
            "tree size {size:?} is not a canonical decimal"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leaf_hash;

    const ORIGIN: &str = "hub.example/audit";

    fn signer(name: &str) -> NoteSigner {
        NoteSigner::new(name, token::Ed25519Key::generate().unwrap()).unwrap()
    }

    fn signed(signer: &NoteSigner) -> (String, Hash) {
        let root = leaf_hash(b"root");
        (checkpoint_note(ORIGIN, 42, &root, signer).unwrap(), root)
    }

    #[test]
    fn round_trip() {
        let s = signer(ORIGIN);
        let (note, root) = signed(&s);
        let body = format!("{ORIGIN}\n42\n{}\n", encode_hash(&root));
        assert!(note.starts_with(&format!("{body}\n\u{2014} {ORIGIN} ")));
        assert_eq!(note.lines().count(), 5);
        let v = NoteVerifier::parse(&s.verifier_key()).unwrap();
        assert_eq!(v, s.verifier());
        let cp = verify_checkpoint_note(&note, &v, ORIGIN).unwrap();
        assert_eq!(
            cp,
            NoteCheckpoint {
                origin: ORIGIN.into(),
                tree_size: 42,
                root,
                extensions: vec![],
            }
        );
    }

    #[test]
    fn tampered_note_rejected() {
        let s = signer(ORIGIN);
        let v = s.verifier();
        let (note, root) = signed(&s);
        let other_root = encode_hash(&leaf_hash(b"forged"));
        for forged in [
            note.replacen("\n42\n", "\n43\n", 1),
            note.replacen(&encode_hash(&root), &other_root, 1),
            note.replacen(ORIGIN, "hub.example/other", 1),
            note.replacen("\n\n", "\nextension\n\n", 1),
        ] {
            assert!(matches!(
                verify_checkpoint_note(&forged, &v, ORIGIN),
                Err(AuditError::NoteSignature { .. })
            ));
        }
    }

    #[test]
    fn wrong_origin_rejected() {
        let s = signer(ORIGIN);
        let (note, _) = signed(&s);
        assert!(matches!(
            verify_checkpoint_note(&note, &s.verifier(), "hub.example/other"),
            Err(AuditError::NoteOrigin { .. })
        ));
    }

    #[test]
    fn other_key_with_same_name_rejected() {
        let (note, _) = signed(&signer(ORIGIN));
        let v = signer(ORIGIN).verifier();
        assert!(matches!(
            verify_checkpoint_note(&note, &v, ORIGIN),
            Err(AuditError::NoteUnsigned { .. })
        ));
    }

    #[test]
    fn cosignature_by_other_key_ignored() {
        let s = signer(ORIGIN);
        let (note, root) = signed(&s);
        let text = &note[..note.find("\n\n").unwrap() + 1];
        let witness = signer("witness.example/w1");
        let cosigned = format!("{note}{}", witness.signature_line(text));
        let cp = verify_checkpoint_note(&cosigned, &s.verifier(), ORIGIN).unwrap();
        assert_eq!((cp.tree_size, cp.root), (42, root));
        // Either key's line can open it; the witness's verifier sees its own.
        assert!(open_note(&cosigned, &witness.verifier()).is_ok());
        // Same key id under another name: another key, not a bad signature.
        let blob = STANDARD.encode([s.id.as_slice(), &[0; 64]].concat());
        let alias = format!("{note}\u{2014} other.example/log {blob}\n");
        assert!(verify_checkpoint_note(&alias, &s.verifier(), ORIGIN).is_ok());
    }

    #[test]
    fn extensions_returned() {
        let s = signer(ORIGIN);
        let root = encode_hash(&leaf_hash(b"root"));
        let note = sign_note(&format!("{ORIGIN}\n7\n{root}\next one\next2\n"), &s);
        let cp = verify_checkpoint_note(&note, &s.verifier(), ORIGIN).unwrap();
        assert_eq!(cp.extensions, ["ext one", "ext2"]);
    }

    #[test]
    fn malformed_bodies_rejected() {
        let s = signer(ORIGIN);
        let root = encode_hash(&leaf_hash(b"root"));
        let short_root = STANDARD.encode([0u8; 31]);
        for body in [
            format!("{ORIGIN}\n042\n{root}\n"),
            format!("{ORIGIN}\n+42\n{root}\n"),
            format!("{ORIGIN}\n\n{root}\n"),
            format!("{ORIGIN}\n18446744073709551616\n{root}\n"),
            format!("{ORIGIN}\n42\n{short_root}\n"),
            format!("{ORIGIN}\n42\nnot base64!\n"),
            format!("{ORIGIN}\n42\n"),
            format!("{ORIGIN}\n42\n{root}\n\nextension\n"),
        ] {
            let note = sign_note(&body, &s);
            assert!(
                matches!(
                    verify_checkpoint_note(&note, &s.verifier(), ORIGIN),
                    Err(AuditError::NoteMalformed(_))
                ),
                "{body:?}"
            );
        }
        let zero = sign_note(&format!("{ORIGIN}\n0\n{root}\n"), &s);
        assert_eq!(
            verify_checkpoint_note(&zero, &s.verifier(), ORIGIN)
                .unwrap()
                .tree_size,
            0
        );
    }

    #[test]
    fn malformed_notes_rejected() {
        let s = signer(ORIGIN);
        let (note, _) = signed(&s);
        let line = &note[note.find("\n\n").unwrap() + 2..];
        let many = format!("{note}{}", line.repeat(MAX_SIGNATURES));
        for bad in [
            note.replacen("\n\n", "\n", 1),
            note.trim_end().to_owned(),
            note.replacen('\u{2014}', "-", 1),
            format!("{note}\u{2014} {ORIGIN}\n"),
            format!("{note}\u{2014} a+b {}", line.rsplit_once(' ').unwrap().1),
            format!("{note}\u{2014} {ORIGIN} !!!!\n"),
            format!("{note}\u{2014} {ORIGIN} AAAA\n"),
            note.replacen('\n', "\t\n", 1),
            many,
        ] {
            assert!(
                matches!(
                    verify_checkpoint_note(&bad, &s.verifier(), ORIGIN),
                    Err(AuditError::NoteMalformed(_))
                ),
                "{bad:?}"
            );
        }
        assert!(checkpoint_note("", 1, &[0; 32], &s).is_err());
        assert!(checkpoint_note("a\nb", 1, &[0; 32], &s).is_err());
    }

    #[test]
    fn key_names_and_verifier_keys_checked() {
        for name in ["", "a b", "a+b", "a\nb", "a\u{00a0}b"] {
            assert!(matches!(
                NoteSigner::new(name, token::Ed25519Key::generate().unwrap()),
                Err(AuditError::NoteKey(_))
            ));
        }
        let s = signer(ORIGIN);
        assert_eq!(
            format!("{s:?}"),
            format!(
                "NoteSigner {{ name: KeyName({ORIGIN:?}), key_id: {:?}, .. }}",
                hex_id(s.id)
            )
        );
        let vkey = s.verifier_key();
        // The base64 may contain '+': split after `<name>+<8 hex>+`.
        let (name_and_id, b64) = vkey.split_at(ORIGIN.len() + 10);
        let mut key = STANDARD.decode(b64).unwrap();
        key[0] = 0x02;
        let other_type = format!("{name_and_id}{}", STANDARD.encode(&key));
        let err = NoteVerifier::parse(&other_type).unwrap_err().to_string();
        assert!(err.contains("type 0x02 is not supported"), "{err}");
        let wrong_id = vkey.replacen(&hex_id(s.id), &hex_id(s.id.map(|b| !b)), 1);
        for bad in [other_type, wrong_id, format!("x{vkey}"), ORIGIN.to_owned()] {
            assert!(
                matches!(NoteVerifier::parse(&bad), Err(AuditError::NoteKey(_))),
                "{bad}"
            );
        }
    }

    /// The example in the documentation of golang.org/x/mod/sumdb/note: the
    /// signer key `PRIVATE+KEY+PeterNeumann+c74f20a3+<base64(0x01 || seed)>`,
    /// its verifier key and the signed note. Ed25519 is deterministic, so our
    /// signature line must be byte-identical.
    #[test]
    fn go_sumdb_note_vector() {
        const SEED: &str = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
        const VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
        const TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                            then you don't know what your problem is.\n";
        const NOTE_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
        const ENOCH_SIG: &str = "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

        let seed = STANDARD.decode(SEED).unwrap();
        let key = token::Ed25519Key::from_seed(&seed[1..]).unwrap();
        let s = NoteSigner::new("PeterNeumann", key).unwrap();
        assert_eq!(s.id, [0xc7, 0x4f, 0x20, 0xa3]);
        assert_eq!(s.verifier_key(), VKEY);
        let note = format!("{TEXT}\n{NOTE_SIG}");
        assert_eq!(sign_note(TEXT, &s), note);

        let v = NoteVerifier::parse(VKEY).unwrap();
        assert_eq!(open_note(&note, &v).unwrap(), TEXT);
        // The doubly-signed example: EnochRoot's line is another key's, ignored.
        assert_eq!(open_note(&format!("{note}{ENOCH_SIG}"), &v).unwrap(), TEXT);
        assert!(matches!(
            open_note(&note.replacen("cryptography", "cryptographY", 1), &v),
            Err(AuditError::NoteSignature { .. })
        ));
    }
}
