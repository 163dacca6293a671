//! Numbers that carry their range in their type: a percentage, the improvement a variant must
//! show, and a confidence level. Each range is written once, here; validation reports a value
//! outside it with the field's own hint (through each type's `range`) and deserialisation refuses
//! one, so a [`crate::experiment::Decision`] or [`crate::experiment::Guardrails`] holds only
//! values its users (the judge, feasibility, the probe's guard, a fleet) take without checking
//! again.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

use crate::reader::Range;

/// Defines a finite `f64` newtype that only [`TryFrom<f64>`] (and so deserialisation) makes:
/// `get`, `Display` as the number, and a JSON Schema that is plain `f64`'s (each field states
/// its own range there, so the published schema is what it was when the fields were `f64`).
macro_rules! bounded {
    ($(#[$doc:meta])* $name:ident, $range:expr, $expected:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
        #[serde(try_from = "f64", into = "f64")]
        pub struct $name(pub(super) f64);

        impl $name {
            /// The number, within the type's range.
            pub fn get(self) -> f64 {
                self.0
            }

            /// The type's range, which validation narrows per field where it must.
            pub(crate) fn range() -> Range {
                $range
            }
        }

        impl TryFrom<f64> for $name {
            type Error = OutOfRange;

            fn try_from(value: f64) -> Result<$name, OutOfRange> {
                match $name::range().contains(value) {
                    true => Ok($name(value)),
                    false => Err(OutOfRange {
                        value,
                        expected: $expected,
                    }),
                }
            }
        }

        impl From<$name> for f64 {
            fn from(n: $name) -> f64 {
                n.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl JsonSchema for $name {
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

bounded!(
    /// A percentage from 0 to 100 (the error limits: `max_error_increase_pp`,
    /// `abort_error_rate_pct`).
    ///
    /// ```
    /// use smart_core::experiment::Percent;
    ///
    /// assert_eq!(Percent::try_from(12.5).unwrap().get(), 12.5);
    /// assert!(Percent::try_from(101.0).is_err());
    /// ```
    Percent,
    Range::closed(0.0, 100.0),
    "a percentage from 0 to 100"
);

bounded!(
    /// The reduction a variant must show, in percent (`min_improvement_pct`): from 0 up to, not
    /// including, 100 (a 100 % reduction would be zero latency), so `ln(1 − p / 100)` is finite.
    ///
    /// ```
    /// use smart_core::experiment::Improvement;
    ///
    /// assert_eq!(Improvement::try_from(10.0).unwrap().get(), 10.0);
    /// assert!(Improvement::try_from(100.0).is_err());
    /// ```
    Improvement,
    Range::closed(0.0, 100.0).below_max(),
    "an improvement from 0 up to (not including) 100 percent"
);

bounded!(
    /// A confidence level, strictly between 0 and 1 (e.g. `0.95`).
    ///
    /// ```
    /// use smart_core::experiment::Confidence;
    ///
    /// assert_eq!(Confidence::try_from(0.95).unwrap().get(), 0.95);
    /// assert!(Confidence::try_from(1.0).is_err());
    /// ```
    Confidence,
    Range::closed(0.0, 1.0).above_min().below_max(),
    "a confidence level strictly between 0 and 1, e.g. 0.95"
);

/// A number outside the range of [`Percent`], [`Improvement`] or [`Confidence`].
#[derive(Debug, Clone, PartialEq)]
pub struct OutOfRange {
    value: f64,
    expected: &'static str,
}

impl fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is out of range; give {}", self.value, self.expected)
    }
}

impl std::error::Error for OutOfRange {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_checked_once_by_conversion_and_deserialisation() {
        for (v, ok) in [(0.0, true), (100.0, true), (-0.1, false), (f64::NAN, false)] {
            assert_eq!(Percent::try_from(v).is_ok(), ok, "{v}");
        }
        for (v, ok) in [(0.0, true), (99.9, true), (100.0, false)] {
            assert_eq!(Improvement::try_from(v).is_ok(), ok, "{v}");
        }
        for (v, ok) in [
            (0.5, true),
            (0.0, false),
            (1.0, false),
            (f64::INFINITY, false),
        ] {
            assert_eq!(Confidence::try_from(v).is_ok(), ok, "{v}");
        }
        let err = serde_json::from_str::<Confidence>("1.5").unwrap_err();
        assert!(err.to_string().contains("1.5 is out of range"), "{err}");
        let p: Percent = serde_json::from_str("7.5").unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "7.5");
    }
}
