//! How each request ended, and counts of each.

use serde::{Deserialize, Serialize};

/// How one request ended. Every scheduled request gets exactly one outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A response with a status in the target's `ok_status`.
    Ok,
    /// A response with any other status.
    BadStatus,
    /// No complete response within the target's timeout.
    Timeout,
    /// The connection could not be made (refused, unreachable, TLS handshake failed).
    Connect,
    /// Not sent: the cap on requests in flight was reached (the server is falling behind).
    Overload,
    /// Any other failure (connection reset mid-response, malformed response, ...).
    Other,
}

impl Outcome {
    /// Every outcome, in display order.
    pub const ALL: [Outcome; 6] = [
        Outcome::Ok,
        Outcome::BadStatus,
        Outcome::Timeout,
        Outcome::Connect,
        Outcome::Overload,
        Outcome::Other,
    ];

    /// Whether the outcome counts as an error (everything but [`Outcome::Ok`]).
    pub fn is_error(self) -> bool {
        self != Outcome::Ok
    }

    /// Whether the server answered (with any status).
    pub fn is_answer(self) -> bool {
        matches!(self, Outcome::Ok | Outcome::BadStatus)
    }

    /// The name used in JSON and summaries (`ok`, `bad_status`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::BadStatus => "bad_status",
            Outcome::Timeout => "timeout",
            Outcome::Connect => "connect",
            Outcome::Overload => "overload",
            Outcome::Other => "other",
        }
    }

    pub(crate) fn code(self) -> u32 {
        match self {
            Outcome::Ok => 0,
            Outcome::BadStatus => 1,
            Outcome::Timeout => 2,
            Outcome::Connect => 3,
            Outcome::Overload => 4,
            Outcome::Other => 5,
        }
    }

    pub(crate) fn from_code(code: u32) -> Outcome {
        Outcome::ALL
            .get(code as usize)
            .copied()
            .unwrap_or(Outcome::Other)
    }
}

/// How many requests ended with each outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeCounts {
    /// Responses with an ok status.
    pub ok: u64,
    /// Responses with another status.
    pub bad_status: u64,
    /// Requests that timed out.
    pub timeout: u64,
    /// Requests whose connection failed.
    pub connect: u64,
    /// Requests not sent because the cap on requests in flight was reached.
    pub overload: u64,
    /// Requests that failed otherwise.
    pub other: u64,
}

impl OutcomeCounts {
    /// Counts one more `outcome`.
    pub fn add(&mut self, outcome: Outcome) {
        *self.slot(outcome) += 1;
    }

    /// The count of `outcome`.
    pub fn get(&self, outcome: Outcome) -> u64 {
        let mut copy = *self;
        *copy.slot(outcome)
    }

    fn slot(&mut self, outcome: Outcome) -> &mut u64 {
        match outcome {
            Outcome::Ok => &mut self.ok,
            Outcome::BadStatus => &mut self.bad_status,
            Outcome::Timeout => &mut self.timeout,
            Outcome::Connect => &mut self.connect,
            Outcome::Overload => &mut self.overload,
            Outcome::Other => &mut self.other,
        }
    }

    /// Each outcome with its count, in [`Outcome::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Outcome, u64)> + '_ {
        Outcome::ALL.into_iter().map(|o| (o, self.get(o)))
    }

    /// All outcomes.
    pub fn total(&self) -> u64 {
        Outcome::ALL.iter().map(|o| self.get(*o)).sum()
    }

    /// All outcomes but ok.
    pub fn errors(&self) -> u64 {
        self.total() - self.ok
    }

    /// Errors as a percentage of all outcomes (0 when there are none).
    pub fn error_rate_pct(&self) -> f64 {
        match self.total() {
            0 => 0.0,
            total => self.errors() as f64 * 100.0 / total as f64,
        }
    }
}

/// How one request ended.
pub(crate) struct Answer {
    pub(crate) outcome: Outcome,
    pub(crate) status: Option<u16>,
    pub(crate) retried: bool,
}

impl Answer {
    /// No complete answer within the timeout.
    pub(crate) const TIMEOUT: Answer = Answer {
        outcome: Outcome::Timeout,
        status: None,
        retried: false,
    };

    /// A due request the in-flight cap refused.
    pub(crate) const OVERLOAD: Answer = Answer {
        outcome: Outcome::Overload,
        status: None,
        retried: false,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_counts_add_up() {
        let mut counts = OutcomeCounts::default();
        for (i, outcome) in Outcome::ALL.into_iter().enumerate() {
            assert_eq!(Outcome::from_code(outcome.code()), outcome);
            for _ in 0..=i {
                counts.add(outcome);
            }
        }
        assert_eq!(counts.total(), 21);
        assert_eq!(counts.ok, 1);
        assert_eq!(counts.other, 6);
        assert_eq!(counts.errors(), 20);
        assert!((counts.error_rate_pct() - 2000.0 / 21.0).abs() < 1e-9);
        assert_eq!(OutcomeCounts::default().error_rate_pct(), 0.0);
    }
}
