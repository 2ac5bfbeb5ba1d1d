//! Given-name equivalence ("Bill" for "William") from the documented table in
//! `data/nicknames.txt`.

use std::collections::HashMap;
use std::sync::LazyLock;

/// Normalised name -> the table lines (groups) it appears on.
static GROUPS: LazyLock<HashMap<&'static str, Vec<u16>>> = LazyLock::new(|| {
    let mut groups: HashMap<&'static str, Vec<u16>> = HashMap::new();
    let lines = include_str!("../data/nicknames.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    for (group, line) in (0u16..).zip(lines) {
        for name in line.split_whitespace() {
            groups.entry(name).or_default().push(group);
        }
    }
    groups
});

/// True when two different normalised given names are on one line of the table.
pub(crate) fn equivalent(a: &str, b: &str) -> bool {
    match (GROUPS.get(a), GROUPS.get(b)) {
        (Some(x), Some(y)) => x.iter().any(|g| y.contains(g)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalise_name;

    #[test]
    fn table_entries_are_normalised_single_words() {
        for name in GROUPS.keys() {
            assert_eq!(normalise_name(name), *name, "{name} is not normalised");
            assert!(!name.contains(' '));
        }
    }

    #[test]
    fn groups_are_symmetric_and_not_transitive_across_lines() {
        assert!(equivalent("bill", "william"));
        assert!(equivalent("william", "bill"));
        assert!(equivalent("chris", "christine"));
        assert!(equivalent("chris", "christopher"));
        assert!(!equivalent("christopher", "christine"));
        assert!(!equivalent("bill", "robert"));
        assert!(!equivalent("zed", "zed"));
    }
}
