//! Walking an error's chain of causes: the one implementation the crates use to print, log or
//! classify an error with everything under it.

use std::error::Error;

/// `error`, then its source, then that one's source, and so on.
pub fn chain<'a>(
    error: &'a (dyn Error + 'static),
) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(Some(error), |&e| e.source())
}

/// The whole chain on one line: `error: cause: cause of the cause`.
pub fn joined(error: &(dyn Error + 'static)) -> String {
    chain(error)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot write the record")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn the_chain_runs_from_the_error_down_to_its_root_cause() {
        let error = Outer(std::io::Error::other("disk full"));
        assert_eq!(chain(&error).count(), 2);
        assert_eq!(joined(&error), "cannot write the record: disk full");
    }
}
