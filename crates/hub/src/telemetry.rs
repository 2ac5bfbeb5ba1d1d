//! Logging: structured (JSON) or human-readable lines through `tracing`.
//!
//! Nothing in the hub logs personal data: datasets and identities have hand-written
//! `Debug` impls that omit it, and handlers log ids, steps and reason codes only.

use std::io::IsTerminal;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use tracing::Span;
use tracing_actix_web::RootSpanBuilder;
use tracing_subscriber::{fmt, EnvFilter};

/// Flushes the log lines still queued for the writer thread when dropped: hold it until
/// the process exits.
pub type LogGuard = tracing_appender::non_blocking::WorkerGuard;

/// Installs the global subscriber once; `RUST_LOG` overrides the default filter.
///
/// Lines go to stderr from a writer thread of their own: a request then costs no write
/// system call of its own, and a slow log pipe never stalls the event loops. If the
/// writer falls 128k lines behind, further lines are dropped rather than blocking a
/// request.
pub fn init(json: bool) -> LogGuard {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,actix_web=warn"));
    let ansi = std::io::stderr().is_terminal();
    // Buffered: the writer thread flushes after each batch it drains, one write for many lines.
    let (writer, guard) =
        tracing_appender::non_blocking(std::io::BufWriter::new(std::io::stderr()));
    let builder = fmt()
        .with_env_filter(filter)
        .with_target(false)
        // Colour codes only for a person at a terminal, not in files or collectors.
        .with_ansi(ansi)
        .with_writer(writer);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    guard
}

/// The span every request runs in: method, route template and status.
///
/// Not the URL: a query string carries authorization codes, `state` and
/// `request_uri` values (the IdP callback, `/authorize`), which must not reach
/// the logs. Also fewer fields to format on every request than
/// `tracing-actix-web`'s default span.
#[derive(Debug)]
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let route = request.match_pattern();
        tracing::info_span!(
            "request",
            method = %request.method(),
            route = route.as_deref().unwrap_or("unmatched"),
            status = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(
        span: Span,
        outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        let status = match outcome {
            Ok(response) => response.status(),
            Err(error) => error.as_response_error().status_code(),
        };
        span.record("status", status.as_u16());
    }
}
