//! The search space: each param's ordered values, and the constraints a candidate must meet.
//!
//! The strategy works on indices into each param's values (a [`Point`]), so integer ranges, log
//! ranges and string choices are walked the same way.

use serde::{Deserialize, Serialize};
use smart_core::experiment::{Constraint, Domain, ParamValue, Params, SearchSpec};

use crate::error::SearchError;

/// One value per param: the index of the value in each param's list, params in name order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Point(pub Vec<usize>);

/// One searched param.
#[derive(Debug, Clone, PartialEq)]
pub struct Dim {
    name: String,
    values: Vec<ParamValue>,
    ordered: bool,
}

impl Dim {
    /// The param's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its values, in order.
    pub fn values(&self) -> &[ParamValue] {
        &self.values
    }

    /// Whether neighbouring values are related (an integer range) or not (string choices).
    pub fn ordered(&self) -> bool {
        self.ordered
    }
}

/// The params a search may set, with the constraints between them.
#[derive(Debug, Clone, PartialEq)]
pub struct Space {
    dims: Vec<Dim>,
    constraints: Vec<(usize, Constraint, usize)>,
}

impl Space {
    /// The space of a search section. Validation has already checked it; this fails only on a
    /// section that skipped validation.
    pub fn new(spec: &SearchSpec) -> Result<Self, SearchError> {
        if spec.params.is_empty() {
            return Err(SearchError::new(
                "search.params is empty; give at least one param",
            ));
        }
        let mut dims = Vec::with_capacity(spec.params.len());
        for (name, domain) in &spec.params {
            let values = domain
                .levels()
                .map_err(|m| SearchError::new(format!("search.params.{name}: {m}")))?;
            dims.push(Dim {
                name: name.clone(),
                values,
                ordered: matches!(domain, Domain::Range(_)),
            });
        }
        let mut constraints = Vec::with_capacity(spec.constraints.len());
        for c in &spec.constraints {
            let find = |n: &str| {
                dims.iter()
                    .position(|d| d.name == n && d.ordered)
                    .ok_or_else(|| {
                        SearchError::new(format!(
                            "search.constraints: \"{n}\" is not an integer param of the search"
                        ))
                    })
            };
            constraints.push((find(&c.left)?, c.clone(), find(&c.right)?));
        }
        Ok(Space { dims, constraints })
    }

    /// The params, in name order.
    pub fn dims(&self) -> &[Dim] {
        &self.dims
    }

    /// The params a point renders with.
    pub fn params(&self, point: &Point) -> Params {
        self.dims
            .iter()
            .zip(&point.0)
            .map(|(d, &i)| (d.name.clone(), d.values[i].clone()))
            .collect()
    }

    /// The point whose values are exactly these params, if every searched param is given and on
    /// its list.
    pub fn point_of(&self, params: &Params) -> Option<Point> {
        self.dims
            .iter()
            .map(|d| {
                let v = params.get(&d.name)?;
                d.values.iter().position(|x| x == v)
            })
            .collect::<Option<Vec<_>>>()
            .map(Point)
    }

    /// The middle value of every param (the lower middle for an even count).
    pub fn middle(&self) -> Point {
        Point(self.dims.iter().map(|d| (d.values.len() - 1) / 2).collect())
    }

    /// Whether the point is inside the space and meets every constraint.
    pub fn allowed(&self, point: &Point) -> bool {
        if point.0.len() != self.dims.len()
            || point
                .0
                .iter()
                .zip(&self.dims)
                .any(|(&i, d)| i >= d.values.len())
        {
            return false;
        }
        self.constraints.iter().all(|(l, c, r)| {
            match (
                &self.dims[*l].values[point.0[*l]],
                &self.dims[*r].values[point.0[*r]],
            ) {
                (ParamValue::Int(a), ParamValue::Int(b)) => {
                    c.op.holds(*a, b.saturating_mul(c.factor))
                }
                _ => false,
            }
        })
    }

    /// How many points the space holds (the size of the full grid), saturating.
    pub fn size(&self) -> u64 {
        self.dims
            .iter()
            .fold(1u64, |n, d| n.saturating_mul(d.values.len() as u64))
    }

    /// A short label for a point: `level=6,buffer=32k`.
    pub fn label(&self, point: &Point) -> String {
        self.dims
            .iter()
            .zip(&point.0)
            .map(|(d, &i)| format!("{}={}", d.name, d.values[i]))
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use smart_core::experiment::{Choices, Comparison, IntRange, Scale};

    use super::*;

    fn space() -> Space {
        let mut params = BTreeMap::new();
        let range = |min, max| {
            Domain::Range(IntRange {
                min,
                max,
                step: None,
                scale: Scale::Linear,
            })
        };
        params.insert("workers".to_string(), range(1, 8));
        params.insert("conns".to_string(), range(1, 16));
        params.insert(
            "mode".to_string(),
            Domain::Choices(Choices {
                choices: vec!["a".into(), "b".into()],
            }),
        );
        let mut spec = SearchSpec::new(params);
        spec.constraints.push(Constraint {
            left: "conns".into(),
            op: Comparison::AtLeast,
            right: "workers".into(),
            factor: 2,
        });
        Space::new(&spec).unwrap()
    }

    #[test]
    fn points_round_trip_and_constraints_hold() {
        let s = space();
        // Dims in name order: conns, mode, workers.
        let p = Point(vec![7, 1, 3]);
        assert_eq!(s.label(&p), "conns=8,mode=b,workers=4");
        assert_eq!(s.point_of(&s.params(&p)), Some(p.clone()));
        assert!(s.allowed(&p), "8 >= 2 × 4");
        assert!(!s.allowed(&Point(vec![6, 1, 3])), "7 < 2 × 4");
        assert!(!s.allowed(&Point(vec![16, 0, 0])), "outside conns");
        assert_eq!(s.size(), 16 * 2 * 8);
        assert_eq!(s.middle(), Point(vec![7, 0, 3]));
    }
}
