//! `verify_export` accepts honest exports and names each kind of tampering.

use audit::{
    inclusion_proof, root, verify_export, AuditError, Checkpoint, Event, EventType, ExportedEvent,
    MemoryTree, VerifyReport,
};

struct Log {
    events: Vec<Event>,
    tree: MemoryTree,
    key: token::SigningKey,
    keys: token::VerificationKeys,
}

fn log(n: usize) -> Log {
    let events: Vec<Event> = (0..n)
        .map(|i| Event {
            journey_id: Some(format!("j-{}", i / 3)),
            rp: Some(if i % 4 == 0 { "rp-a" } else { "rp-b" }.into()),
            idp: Some("idp-1".into()),
            outcome: Some("success".into()),
            match_cycle: (i % 5 == 0).then_some(1),
            reasons: if i % 7 == 0 {
                vec!["dob_exact".into()]
            } else {
                vec![]
            },
            ..Event::new(EventType::ALL[i % EventType::ALL.len()], "hub-1")
        })
        .collect();
    let tree: MemoryTree = events.iter().map(Event::leaf_hash).collect();
    let key = token::SigningKey::generate().expect("key");
    let keys = token::VerificationKeys::from_jwks(&key.jwks()).expect("jwks");
    Log {
        events,
        tree,
        key,
        keys,
    }
}

impl Log {
    fn checkpoint(&self, size: u64) -> Checkpoint {
        let r = root(size, &self.tree).expect("root");
        Checkpoint::sign(size, &r, "2025-03-01T12:00:00.000Z".into(), &self.key).expect("sign")
    }

    /// The lines of a complete export of the first `size` events.
    fn complete(&self, size: usize) -> Vec<ExportedEvent> {
        self.events[..size]
            .iter()
            .enumerate()
            .map(|(i, e)| ExportedEvent::new(i as u64, e.clone()))
            .collect()
    }

    /// A partial export (events of `rp-a`) with proofs against `size`.
    fn partial(&self, size: usize) -> Vec<ExportedEvent> {
        self.events[..size]
            .iter()
            .enumerate()
            .filter(|(_, e)| e.rp.as_deref() == Some("rp-a"))
            .map(|(i, e)| {
                let proof = inclusion_proof(i as u64, size as u64, &self.tree).expect("proof");
                ExportedEvent::new(i as u64, e.clone()).with_proof(&proof)
            })
            .collect()
    }

    fn verify(&self, lines: &[ExportedEvent], cp: &Checkpoint) -> Result<VerifyReport, AuditError> {
        verify_export(jsonl(lines).as_bytes(), cp, &self.keys)
    }
}

fn jsonl(lines: &[ExportedEvent]) -> String {
    lines
        .iter()
        .map(|l| serde_json::to_string(l).expect("json") + "\n")
        .collect()
}

#[test]
fn honest_exports_verify() {
    let log = log(37);
    let cp = log.checkpoint(37);
    assert_eq!(
        log.verify(&log.complete(37), &cp).unwrap(),
        VerifyReport {
            events: 37,
            complete: true
        }
    );
    let partial = log.partial(37);
    assert_eq!(
        log.verify(&partial, &cp).unwrap(),
        VerifyReport {
            events: partial.len() as u64,
            complete: false
        }
    );
    // Proofs on a complete export are checked too, and it is still complete.
    let with_proofs: Vec<_> = log
        .complete(37)
        .into_iter()
        .map(|l| {
            let p = inclusion_proof(l.index, 37, &log.tree).unwrap();
            l.with_proof(&p)
        })
        .collect();
    assert!(log.verify(&with_proofs, &cp).unwrap().complete);
    // An older checkpoint and its prefix.
    let old = log.checkpoint(20);
    assert!(log.verify(&log.complete(20), &old).unwrap().complete);
    assert!(!log.verify(&log.partial(20), &old).unwrap().complete);
    // The empty log.
    let empty = log.checkpoint(0);
    assert!(log.verify(&[], &empty).unwrap().complete);
    // Blank lines (e.g. a trailing newline) are ignored.
    let text = jsonl(&log.complete(37)) + "\n\n";
    assert!(
        verify_export(text.as_bytes(), &cp, &log.keys)
            .unwrap()
            .complete
    );
}

#[test]
fn export_lines_are_the_event_fields_plus_index_and_proof() {
    let log = log(3);
    let line = serde_json::to_value(&log.partial(3)[0]).unwrap();
    let obj = line.as_object().unwrap();
    for field in [
        "index",
        "id",
        "time",
        "type",
        "rp",
        "match_cycle",
        "reasons",
        "inclusion_proof",
    ] {
        assert!(obj.contains_key(field), "{field} missing from {line}");
    }
    assert!(!obj.contains_key("event"));
    let no_proof = serde_json::to_value(&log.complete(3)[0]).unwrap();
    assert!(no_proof.get("inclusion_proof").is_none());
    let back: ExportedEvent = serde_json::from_value(line).unwrap();
    assert_eq!(back.event, log.events[0]);
    assert_eq!(back.event.match_cycle, Some(1));
}

#[test]
fn altered_event_detected() {
    let log = log(37);
    let cp = log.checkpoint(37);
    let mut lines = log.complete(37);
    lines[11].event.outcome = Some("no_match".into());
    assert!(matches!(
        log.verify(&lines, &cp),
        Err(AuditError::RootMismatch { tree_size: 37 })
    ));
    let mut lines = log.partial(37);
    lines[2].event.rp = Some("rp-z".into());
    let err = log.verify(&lines, &cp).unwrap_err();
    assert!(
        matches!(
            err,
            AuditError::InclusionProofFailed {
                line: 3,
                index: 8,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn missing_events_detected() {
    let log = log(37);
    let cp = log.checkpoint(37);
    let mut lines = log.complete(37);
    lines.remove(15);
    let err = log.verify(&lines, &cp).unwrap_err();
    assert!(
        matches!(
            err,
            AuditError::MissingEvents {
                line: 16,
                expected: 15,
                found: 16
            }
        ),
        "{err:?}"
    );
    let mut lines = log.complete(37);
    lines.remove(0);
    assert!(matches!(
        log.verify(&lines, &cp),
        Err(AuditError::MissingEvents {
            line: 1,
            expected: 0,
            found: 1
        })
    ));
    let mut lines = log.complete(37);
    lines.pop();
    assert!(matches!(
        log.verify(&lines, &cp),
        Err(AuditError::ExportIncomplete {
            events: 36,
            tree_size: 37
        })
    ));
    // A partial export whose event lost its proof cannot be checked.
    let mut lines = log.partial(37);
    lines[3].inclusion_proof = None;
    assert!(matches!(
        log.verify(&lines, &cp),
        Err(AuditError::MissingInclusionProof { line: 4, index: 12 })
    ));
}

#[test]
fn reordered_events_detected() {
    let log = log(37);
    let cp = log.checkpoint(37);
    // Swapped lines: indices go backwards.
    let mut lines = log.complete(37);
    lines.swap(5, 9);
    let err = log.verify(&lines, &cp).unwrap_err();
    assert!(
        matches!(
            err,
            AuditError::OutOfOrder {
                line: 7,
                index: 6,
                previous: 9
            }
        ),
        "{err:?}"
    );
    // Swapped events with the indices rewritten to look in order.
    let mut lines = log.complete(37);
    let (a, b) = (lines[5].event.clone(), lines[9].event.clone());
    lines[5].event = b;
    lines[9].event = a;
    assert!(matches!(
        log.verify(&lines, &cp),
        Err(AuditError::RootMismatch { .. })
    ));
    // In a partial export, an event moved to another index fails its proof.
    let mut lines = log.partial(37);
    let (a, b) = (lines[1].event.clone(), lines[2].event.clone());
    lines[1].event = b;
    lines[2].event = a;
    assert!(matches!(
        log.verify(&lines, &cp),
        Err(AuditError::InclusionProofFailed {
            line: 2,
            index: 4,
            ..
        })
    ));
}

#[test]
fn duplicated_events_detected() {
    let log = log(37);
    let cp = log.checkpoint(37);
    let mut lines = log.complete(37);
    lines.insert(21, lines[20].clone());
    assert!(matches!(
        log.verify(&lines, &cp),
        Err(AuditError::DuplicateIndex {
            line: 22,
            index: 20
        })
    ));
    let mut lines = log.partial(37);
    lines.insert(1, lines[0].clone());
    assert!(matches!(
        log.verify(&lines, &cp),
        Err(AuditError::DuplicateIndex { line: 2, index: 0 })
    ));
}

#[test]
fn bad_checkpoints_detected() {
    let log = log(37);
    let cp = log.checkpoint(37);
    let lines = log.complete(37);
    // Signed by another key.
    let other = self::log(37);
    let foreign = other.checkpoint(37);
    assert!(matches!(
        log.verify(&lines, &foreign),
        Err(AuditError::CheckpointSignature(_))
    ));
    // Fields edited to match a tampered export.
    let mut tampered = log.complete(37);
    tampered[3].event.outcome = Some("edited".into());
    let forged_root = tampered
        .iter()
        .map(|l| l.event.leaf_hash())
        .collect::<MemoryTree>();
    let edited = Checkpoint {
        root_hash: audit::encode_hash(&root(37, &forged_root).unwrap()),
        ..cp.clone()
    };
    assert!(matches!(
        log.verify(&tampered, &edited),
        Err(AuditError::CheckpointMismatch { field: "root_hash" })
    ));
    // A corrupted signature.
    let mut broken = cp.clone();
    broken
        .signature
        .replace_range(broken.signature.len() - 4.., "AAAA");
    assert!(matches!(
        log.verify(&lines, &broken),
        Err(AuditError::CheckpointSignature(_))
    ));
    // An event the checkpoint cannot contain.
    let old = log.checkpoint(30);
    let err = log.verify(&lines, &old).unwrap_err();
    assert!(
        matches!(
            err,
            AuditError::IndexBeyondCheckpoint {
                line: 31,
                index: 30,
                tree_size: 30
            }
        ),
        "{err:?}"
    );
}

#[test]
fn malformed_lines_reported_with_line_numbers() {
    let log = log(5);
    let cp = log.checkpoint(5);
    let mut text = jsonl(&log.complete(5));
    text.insert(0, '\n');
    text.push_str("{\"index\": 5, \"nonsense\": true}\n");
    assert!(matches!(
        verify_export(text.as_bytes(), &cp, &log.keys),
        Err(AuditError::ExportMalformed { line: 7, .. })
    ));
    let mut lines = log.partial(5);
    lines[0].inclusion_proof = Some(vec!["bm90IGEgaGFzaA==".into()]);
    assert!(matches!(
        log.verify(&lines, &cp),
        Err(AuditError::ExportMalformed { line: 1, .. })
    ));
}
