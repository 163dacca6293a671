//! `metrics.csv`: one row per block of every run, append-only, with the header written once, for
//! spreadsheets and plotting tools.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::Path;

use crate::engine::{BlockInfo, BlockMeasurement};

/// The CSV header. Latencies are in microseconds, rates in requests per second, times RFC 3339
/// UTC; `kind` is `test` or `soak`; `block` is the block's 1-based index in its run.
pub const METRICS_HEADER: &str = "run,experiment,variant,arm,kind,block,start,end,requests,errors,p50_us,p90_us,p99_us,mean_us,rate_per_s";

/// Appends one block's row to the CSV at `path`, writing the header first when the file is new
/// or empty.
pub(crate) fn append_row(
    path: &Path,
    run_id: &str,
    experiment: &str,
    block: &BlockInfo,
    ended: &str,
    m: &BlockMeasurement,
) -> io::Result<()> {
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    let mut text = String::new();
    if file.metadata()?.len() == 0 {
        text.push_str(METRICS_HEADER);
        text.push('\n');
    }
    let opt = |v: Option<u64>| v.map_or_else(String::new, |v| v.to_string());
    let fields = [
        field(run_id),
        field(experiment),
        field(&block.variant),
        field(&block.arm_name),
        match block.kind {
            crate::engine::BlockKind::Test => "test".to_owned(),
            crate::engine::BlockKind::Soak => "soak".to_owned(),
        },
        block.index.to_string(),
        field(&block.started),
        field(ended),
        m.requests.to_string(),
        m.errors.to_string(),
        opt(m.p50_us),
        opt(m.p90_us),
        opt(m.p99_us),
        m.mean_us.map_or_else(String::new, |v| format!("{v:.1}")),
        format!("{:.3}", m.rate_per_s),
    ];
    text.push_str(&fields.join(","));
    text.push('\n');
    file.write_all(text.as_bytes())
}

/// A CSV field, quoted when it holds a comma, quote or line break.
fn field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_only_when_needed() {
        assert_eq!(field("baseline"), "baseline");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
