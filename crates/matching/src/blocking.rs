//! Blocking keys: how a store finds a handful of candidate records without reading the
//! table. A record is stored under several keys; a query looks up several keys; any
//! shared key makes the record a candidate. The passes are chosen so that any one or two
//! wrong or missing fields never hide the right record:
//!
//! | key | finds the record when these are wrong |
//! |---|---|
//! | date of birth | surname, first name, address |
//! | surname code + year and month of birth | first name, address, day |
//! | postcode + surname code | date of birth, first name |
//! | postcode + first-name initial | date of birth, surname |
//! | surname code + first-name code + birth decade | address, day, month, year's last digit |
//!
//! Keys are opaque strings to the store. They are derived from personal data, so they are
//! stored next to the records and never logged. A query looks up at most
//! [`MAX_QUERY_KEYS`] keys, however many names and addresses it carries.

use std::collections::BTreeSet;

use chrono::Datelike;

use crate::normalise::{
    name_code, normalise_name, parse_date_of_birth, postcode_key, surname_codes,
};
use crate::MatchingDataset;

/// The most keys a query looks up (the most surnames, given names and postcodes it uses
/// are bounded so that this holds): a query with hundreds of names must neither exceed a
/// database's limit on bound parameters nor read a large part of the table.
pub const MAX_QUERY_KEYS: usize = 64;

/// How many of each multi-valued field a query's keys use (the first ones given).
const MAX_SURNAMES: usize = 4;
const MAX_POSTCODES: usize = 4;

/// Keys a department record is stored under.
pub fn record_blocking_keys(d: &MatchingDataset) -> Vec<String> {
    keys(d, usize::MAX, false)
}

/// Keys to look up for a query: the record keys plus the date of birth with day and month
/// swapped, at most [`MAX_QUERY_KEYS`].
pub fn query_blocking_keys(d: &MatchingDataset) -> Vec<String> {
    let mut keys = keys(d, MAX_SURNAMES.max(MAX_POSTCODES), true);
    keys.truncate(MAX_QUERY_KEYS);
    keys
}

fn keys(d: &MatchingDataset, most: usize, query: bool) -> Vec<String> {
    let mut keys = BTreeSet::new();
    let dob = d.date_of_birth.as_deref().and_then(parse_date_of_birth);
    let surnames: Vec<String> = surname_codes(d.surnames.iter().take(most.min(d.surnames.len())))
        .into_iter()
        .take(if query { 2 * MAX_SURNAMES } else { usize::MAX })
        .collect();
    let postcodes: BTreeSet<String> = d
        .addresses
        .iter()
        .filter_map(|a| a.postcode.as_deref())
        .filter_map(postcode_key)
        .take(if query { MAX_POSTCODES } else { usize::MAX })
        .collect();
    let given = d
        .first_name
        .as_deref()
        .map(normalise_name)
        .unwrap_or_default();
    let given = given.split(' ').find(|w| !w.is_empty());
    if let Some(dob) = dob {
        keys.insert(format!("d:{}", dob.format("%Y-%m-%d")));
        // The IdP may have day and month the other way round.
        let swapped = chrono::NaiveDate::from_ymd_opt(dob.year(), dob.day(), dob.month());
        if let Some(swapped) = swapped.filter(|s| query && *s != dob) {
            keys.insert(format!("d:{}", swapped.format("%Y-%m-%d")));
        }
    }
    for postcode in &postcodes {
        for code in &surnames {
            keys.insert(format!("ps:{postcode}:{code}"));
        }
        if let Some(initial) = given.and_then(|g| g.chars().next()) {
            keys.insert(format!("pf:{postcode}:{initial}"));
        }
    }
    if let Some(dob) = dob {
        for code in &surnames {
            keys.insert(format!("sy:{code}:{}", dob.format("%Y-%m")));
        }
    }
    if let (Some(dob), Some(given)) = (dob, given) {
        let first = name_code(given);
        for code in &surnames {
            keys.insert(format!("sf:{code}:{first}:{}", dob.year() / 10));
        }
    }
    keys.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Address;

    #[test]
    fn a_query_with_many_names_and_addresses_looks_up_a_bounded_number_of_keys() {
        let d = MatchingDataset {
            first_name: Some("Ann".into()),
            surnames: (0..500).map(|i| format!("Surname{i}")).collect(),
            date_of_birth: Some("1980-04-12".into()),
            addresses: (0..500)
                .map(|i| Address {
                    postcode: Some(format!("LS{} {}AB", i % 99, i % 9)),
                    ..Address::default()
                })
                .collect(),
            ..MatchingDataset::default()
        };
        let keys = query_blocking_keys(&d);
        assert!(
            !keys.is_empty() && keys.len() <= MAX_QUERY_KEYS,
            "{}",
            keys.len()
        );
    }
}
