//! Blocking keys: how a store finds a handful of candidate records without reading the
//! table. A record is stored under several keys; a query looks up several keys; any
//! shared key makes the record a candidate. The passes are chosen so that one wrong field
//! never hides the right record: the first name is in no key (nicknames, typos), the date
//! of birth key covers surname and postcode errors, the surname + birth month key a wrong
//! day, and the postcode + surname key any other date error.
//!
//! Keys are opaque strings to the store. They are derived from personal data, so they are
//! stored next to the records and never logged.

use std::collections::BTreeSet;

use chrono::Datelike;

use crate::normalise::{parse_date_of_birth, postcode_key, surname_codes};
use crate::MatchingDataset;

/// Keys a department record is stored under.
pub fn record_blocking_keys(d: &MatchingDataset) -> Vec<String> {
    keys(d, false)
}

/// Keys to look up for a query: the record keys plus variants for the errors the engine
/// forgives (a day/month swap of the date of birth, looked up with the surname).
pub fn query_blocking_keys(d: &MatchingDataset) -> Vec<String> {
    keys(d, true)
}

fn keys(d: &MatchingDataset, with_variants: bool) -> Vec<String> {
    let mut keys = BTreeSet::new();
    let dob = d.date_of_birth.as_deref().and_then(parse_date_of_birth);
    let surnames = surname_codes(&d.surnames);
    let postcodes: BTreeSet<String> = d
        .addresses
        .iter()
        .filter_map(|a| a.postcode.as_deref())
        .filter_map(postcode_key)
        .collect();
    if let Some(dob) = dob {
        keys.insert(format!("d:{}", dob.format("%Y-%m-%d")));
        for code in &surnames {
            keys.insert(format!("sy:{code}:{}", dob.format("%Y-%m")));
        }
        // The IdP may have day and month the other way round: look up the surname key
        // under the swapped month too (narrower than a second date-of-birth key).
        let swapped = chrono::NaiveDate::from_ymd_opt(dob.year(), dob.day(), dob.month());
        if let Some(swapped) = swapped.filter(|s| with_variants && *s != dob) {
            for code in &surnames {
                keys.insert(format!("sy:{code}:{}", swapped.format("%Y-%m")));
            }
        }
    }
    for postcode in &postcodes {
        for code in &surnames {
            keys.insert(format!("ps:{postcode}:{code}"));
        }
    }
    keys.into_iter().collect()
}
