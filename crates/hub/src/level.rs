//! Levels of assurance: an ordered, configured list (default `P0 < P1 < P2 < P3`).

use serde::{Deserialize, Serialize};

/// A level of assurance known to the hub's configuration. Compare with [`Levels`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Level(String);

impl Level {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The configured order of levels; the only way to obtain or compare a [`Level`].
#[derive(Debug, Clone)]
pub struct Levels {
    order: Vec<String>,
}

/// A request for a minimum level, as the RP expressed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelRequest {
    pub minimum: Level,
    /// The `vtr` vectors when the RP used Vectors of Trust (RFC 8485).
    pub vectors: Option<Vec<String>>,
}

impl Levels {
    pub fn new(order: Vec<String>) -> Self {
        Self { order }
    }

    /// The level called `name`, if configured.
    pub fn parse(&self, name: &str) -> Option<Level> {
        self.order
            .iter()
            .find(|l| *l == name)
            .map(|l| Level(l.clone()))
    }

    fn rank(&self, level: &Level) -> usize {
        self.order.iter().position(|l| *l == level.0).unwrap_or(0)
    }

    /// True when `achieved` meets or exceeds `required`.
    pub fn satisfies(&self, achieved: &Level, required: &Level) -> bool {
        self.rank(achieved) >= self.rank(required)
    }

    /// Every configured level, lowest first.
    pub fn all(&self) -> Vec<Level> {
        self.order.iter().map(|l| Level(l.clone())).collect()
    }

    /// Reads the requested minimum from `acr_values` (space separated, the lowest known
    /// value wins: any of them is acceptable to the RP) or `vtr` (a JSON array of vectors
    /// such as `["Cl.Cm.P2"]`; the component naming a level counts). `None` when the
    /// RP asked for neither; `Err` when it asked only for unknown levels.
    pub fn requested(
        &self,
        acr_values: Option<&str>,
        vtr: Option<&str>,
    ) -> Result<Option<LevelRequest>, String> {
        if let Some(vtr) = vtr {
            let vectors: Vec<String> = serde_json::from_str(vtr)
                .map_err(|_| "vtr is not a JSON array of strings".to_owned())?;
            let minimum = vectors
                .iter()
                .filter_map(|v| v.split('.').find_map(|c| self.parse(c)))
                .min_by_key(|l| self.rank(l))
                .ok_or_else(|| "vtr names no supported level".to_owned())?;
            return Ok(Some(LevelRequest {
                minimum,
                vectors: Some(vectors),
            }));
        }
        let Some(acr) = acr_values.filter(|a| !a.trim().is_empty()) else {
            return Ok(None);
        };
        let minimum = acr
            .split_whitespace()
            .filter_map(|a| self.parse(a))
            .min_by_key(|l| self.rank(l))
            .ok_or_else(|| "acr_values names no supported level".to_owned())?;
        Ok(Some(LevelRequest {
            minimum,
            vectors: None,
        }))
    }

    /// The `vot` to return: the requested vector met by `achieved` with the highest level.
    pub fn vector_of_trust(&self, vectors: &[String], achieved: &Level) -> Option<String> {
        vectors
            .iter()
            .filter_map(|v| v.split('.').find_map(|c| self.parse(c)).map(|l| (v, l)))
            .filter(|(_, l)| self.satisfies(achieved, l))
            .max_by_key(|(_, l)| self.rank(l))
            .map(|(v, _)| v.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn levels() -> Levels {
        Levels::new(vec!["P0".into(), "P1".into(), "P2".into(), "P3".into()])
    }

    #[test]
    fn acr_values_lowest_known_level_is_the_minimum() {
        let r = levels().requested(Some("P2 P3 X9"), None).unwrap().unwrap();
        assert_eq!(r.minimum.as_str(), "P2");
        assert!(levels().requested(Some("X9"), None).is_err());
        assert_eq!(levels().requested(None, None).unwrap(), None);
    }

    #[test]
    fn vtr_components_name_the_level() {
        let l = levels();
        let r = l
            .requested(None, Some(r#"["Cl.Cm.P2","Cl.P1"]"#))
            .unwrap()
            .unwrap();
        assert_eq!(r.minimum.as_str(), "P1");
        let achieved = l.parse("P2").unwrap();
        assert_eq!(
            l.vector_of_trust(r.vectors.as_deref().unwrap(), &achieved)
                .unwrap(),
            "Cl.Cm.P2"
        );
        assert!(l.requested(None, Some("P2")).is_err());
    }

    #[test]
    fn ordering() {
        let l = levels();
        let p1 = l.parse("P1").unwrap();
        let p2 = l.parse("P2").unwrap();
        assert!(l.satisfies(&p2, &p1));
        assert!(!l.satisfies(&p1, &p2));
        assert!(l.satisfies(&p1, &p1));
    }
}
