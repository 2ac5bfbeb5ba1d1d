//! No personal data in application logs: every line the hub logs while citizens go
//! through matched, created and cycle-3 journeys is scanned for their attributes.

use std::io::Write;
use std::sync::{Mutex, OnceLock};

use serde_json::json;

use crate::util::*;

static CAPTURED: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURED.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Routes every log line of this test process (all tests) into [`CAPTURED`], as JSON.
fn capture_logs() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let filter = tracing_subscriber::EnvFilter::new(
            "info,hub=debug,store=debug,matching=debug,token=debug",
        );
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(|| Capture)
            .init();
    });
}

#[tokio::test]
async fn journeys_leave_no_personal_data_in_the_logs() {
    capture_logs();
    let hub = spawn_hub().await;
    let matched = hub.id_token_for(RP_MATCH, "alice").await;
    assert_eq!(matched["match"]["record_id"], "123");
    let created = hub.id_token_for(RP_CREATE, "bob").await;
    assert_eq!(created["match"]["status"], "created");
    let request = AuthRequest::new(RP_CYCLE3);
    let params = hub.cycle3_journey(&request).await;
    let claims = hub
        .claims_for(RP_CYCLE3, &params["code"], &request.verifier)
        .await;
    assert_eq!(
        claims["match"],
        json!({"status": "matched", "record_id": "C-202"})
    );

    let logs = String::from_utf8_lossy(&CAPTURED.lock().unwrap()).to_lowercase();
    assert!(
        logs.contains("matching decision"),
        "the capture works: {} bytes",
        logs.len()
    );
    for person in devkit::test_people() {
        let mut personal = vec![person.given_name.clone(), person.family_name.clone()];
        personal.extend(person.birthdate.clone());
        for address in person.address.iter().chain(&person.previous_addresses) {
            personal.push(address.postcode.clone());
            personal.extend(address.lines.iter().cloned());
        }
        for value in personal {
            assert!(
                !contains_token(&logs, &value.to_lowercase()),
                "personal data {value:?} in the logs"
            );
        }
    }
    assert!(!contains_token(&logs, "qq445566c"), "NINO in the logs");
    // Nor codes and states, which travel in query strings (the IdP callback).
    let code = params["code"].to_lowercase();
    assert!(
        !logs.contains(&code),
        "the RP's authorization code in the logs"
    );
    for parameter in ["code=", "state=", "request_uri="] {
        assert!(!logs.contains(parameter), "{parameter} in the logs");
    }
}

/// True when `value` occurs as a whole token, not inside a random identifier such as a
/// base64url state or code (which may contain any short name by chance).
fn contains_token(haystack: &str, value: &str) -> bool {
    let is_id_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    haystack.match_indices(value).any(|(at, _)| {
        let before = haystack[..at].chars().next_back();
        let after = haystack[at + value.len()..].chars().next();
        !before.is_some_and(is_id_char) && !after.is_some_and(is_id_char)
    })
}
