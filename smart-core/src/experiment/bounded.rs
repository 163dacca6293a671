//! Numbers that carry their range in their type: a percentage and a confidence level. Each
//! range is written once, here; validation reports a value outside it with the field's own hint
//! (through [`Percent::range`] and [`Confidence::range`]) and deserialisation refuses one, so a
//! [`crate::experiment::Decision`] or [`crate::experiment::Guardrails`] holds only values its
//! users (the judge, feasibility, the probe's guard) can take without checking again.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

use crate::reader::Range;

/// A percentage from 0 to 100, finite (e.g. `min_improvement_pct`, the error limits).
///
/// ```
/// use smart_core::experiment::Percent;
///
/// let p = Percent::try_from(12.5).unwrap();
/// assert_eq!(p.get(), 12.5);
/// assert!(Percent::try_from(101.0).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Percent(pub(super) f64);

impl Percent {
    /// The percentage, from 0 to 100.
    pub fn get(self) -> f64 {
        self.0
    }

    /// The share it stands for, from 0 to 1.
    pub fn fraction(self) -> f64 {
        self.0 / 100.0
    }

    /// Every percentage: validation narrows it per field (e.g. `min_improvement_pct` below 100).
    pub(crate) fn range() -> Range {
        Range::closed(0.0, 100.0)
    }
}

impl TryFrom<f64> for Percent {
    type Error = OutOfRange;

    fn try_from(value: f64) -> Result<Percent, OutOfRange> {
        match Percent::range().contains(value) {
            true => Ok(Percent(value)),
            false => Err(OutOfRange {
                value,
                expected: "a percentage from 0 to 100",
            }),
        }
    }
}

impl From<Percent> for f64 {
    fn from(p: Percent) -> f64 {
        p.0
    }
}

/// Shown as the number, without a sign: messages name the field and its unit.
impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A confidence level, strictly between 0 and 1 (e.g. `0.95`).
///
/// ```
/// use smart_core::experiment::Confidence;
///
/// let c = Confidence::try_from(0.95).unwrap();
/// assert!((c.alpha() - 0.05).abs() < 1e-12);
/// assert!(Confidence::try_from(1.0).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Confidence(pub(super) f64);

impl Confidence {
    /// The level, in (0, 1).
    pub fn get(self) -> f64 {
        self.0
    }

    /// 1 − the level: the error rate it allows, in (0, 1).
    pub fn alpha(self) -> f64 {
        1.0 - self.0
    }

    /// Strictly between 0 and 1.
    pub(crate) fn range() -> Range {
        Range::closed(0.0, 1.0).above_min().below_max()
    }
}

impl TryFrom<f64> for Confidence {
    type Error = OutOfRange;

    fn try_from(value: f64) -> Result<Confidence, OutOfRange> {
        match Confidence::range().contains(value) {
            true => Ok(Confidence(value)),
            false => Err(OutOfRange {
                value,
                expected: "a confidence level between 0 and 1",
            }),
        }
    }
}

impl From<Confidence> for f64 {
    fn from(c: Confidence) -> f64 {
        c.0
    }
}

/// Shown as the number (e.g. `0.95`).
impl fmt::Display for Confidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A number outside the range of [`Percent`] or [`Confidence`].
#[derive(Debug, Clone, PartialEq)]
pub struct OutOfRange {
    value: f64,
    expected: &'static str,
}

impl fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is not {}", self.value, self.expected)
    }
}

impl std::error::Error for OutOfRange {}

/// Both are plain JSON numbers in the schema (each field states its own range there), so the
/// published schema is what it was when they were `f64`.
macro_rules! number_schema {
    ($t:ty) => {
        impl JsonSchema for $t {
            fn inline_schema() -> bool {
                true
            }

            fn schema_name() -> Cow<'static, str> {
                f64::schema_name()
            }

            fn json_schema(generator: &mut SchemaGenerator) -> Schema {
                f64::json_schema(generator)
            }
        }
    };
}

number_schema!(Percent);
number_schema!(Confidence);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_checked_once_by_conversion_and_deserialisation() {
        for (v, ok) in [(0.0, true), (100.0, true), (-0.1, false), (f64::NAN, false)] {
            assert_eq!(Percent::try_from(v).is_ok(), ok, "{v}");
        }
        for (v, ok) in [
            (0.5, true),
            (0.0, false),
            (1.0, false),
            (f64::INFINITY, false),
        ] {
            assert_eq!(Confidence::try_from(v).is_ok(), ok, "{v}");
        }
        assert!(serde_json::from_str::<Percent>("150").is_err());
        let p: Percent = serde_json::from_str("7.5").unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "7.5");
    }
}
