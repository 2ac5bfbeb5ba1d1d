//! The [`store::SessionStore`] contract (`common/session_contract.rs`), run
//! against every store: in process, and on a real Redis (`REDIS_URL`).
#![allow(clippy::unwrap_used)]

mod memory {
    crate::session_contract!(crate::common::session_contract::Stores::memory());
}

mod redis {
    crate::session_contract!(crate::common::session_contract::Stores::redis().await);
}
