//! Matching against the local database: the one place that turns a dataset into a
//! decision over stored records, so the hub (in-hub placement), the service and the
//! offline modes cannot drift apart.

use matching::{Decision, MatchPolicy, MatchingDataset};
use store::{Database, StoreError};

/// Which cycle to run, with the cycle-3 answer.
#[derive(Debug, Clone, Copy)]
pub enum Cycle<'a> {
    One,
    Three { attribute: &'a str, value: &'a str },
}

impl Cycle<'_> {
    /// The cycle's number, as requests and audit events carry it.
    pub fn number(self) -> u8 {
        match self {
            Cycle::One => 1,
            Cycle::Three { .. } => 3,
        }
    }
}

/// The engine against one database: blocking keys, candidates, decision. The hub (in-hub
/// placement), the matching service and batch mode all decide through this.
pub async fn decide_locally(
    db: &Database,
    rp_id: &str,
    policy: &MatchPolicy,
    dataset: &MatchingDataset,
    cycle: Cycle<'_>,
) -> Result<Decision, StoreError> {
    let keys = matching::query_blocking_keys(dataset);
    let candidates = db
        .candidates_by_blocking_keys(rp_id, &keys, policy.max_candidates)
        .await?;
    Ok(match cycle {
        Cycle::One => matching::match_cycle1(dataset, &candidates, policy),
        Cycle::Three { attribute, value } => {
            matching::match_cycle3(dataset, attribute, value, &candidates, policy)
        }
    })
}
