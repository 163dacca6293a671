//! `metrics.csv`: one row per block of every run, append-only, with the header written once, for
//! spreadsheets and plotting tools.
//!
//! It rotates by size ([`LogRotation`]): a row that would take the file past `max_bytes` goes
//! into a new file, and the full one is moved aside as `metrics-<n>.csv` (`n` zero-padded and
//! rising, so names sort by age), each with its own header; the oldest beyond `keep` are
//! deleted. Writers lock `metrics.lock`, so no row is lost or written twice around a rotation.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use crate::engine::{BlockInfo, BlockMeasurement};
use crate::logs::{self, LogRotation};

/// The lock file writers of `metrics.csv` take, beside it.
const LOCK_FILE: &str = "metrics.lock";

/// The CSV header. Latencies are in microseconds, rates in requests per second, times RFC 3339
/// UTC; `kind` is `test` or `soak`; `block` is the block's 1-based index in its run. The last five
/// columns say what the host was doing (empty when the probe could not read it): the percent of
/// the block in which some task stalled on CPU, memory and I/O (Linux PSI), the 1-minute load
/// average and the percent of CPU time stolen by the hypervisor.
pub const METRICS_HEADER: &str = "run,experiment,variant,arm,kind,block,start,end,requests,errors,p50_us,p90_us,p99_us,mean_us,rate_per_s,cpu_pressure_pct,memory_pressure_pct,io_pressure_pct,load1,steal_pct";

/// Appends one block's row to the CSV at `path`, writing the header first when the file is new
/// or empty, and rotating it as `rotation` says.
pub(crate) fn append_row(
    path: &Path,
    run_id: &str,
    experiment: &str,
    block: &BlockInfo,
    ended: &str,
    m: &BlockMeasurement,
    rotation: &LogRotation,
) -> io::Result<()> {
    let mut text = String::new();
    let opt = |v: Option<u64>| v.map_or_else(String::new, |v| v.to_string());
    let host = |v: Option<f64>| v.map_or_else(String::new, |v| format!("{v:.2}"));
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
        host(m.host.and_then(|h| h.cpu_some_pct)),
        host(m.host.and_then(|h| h.memory_some_pct)),
        host(m.host.and_then(|h| h.io_some_pct)),
        host(m.host.and_then(|h| h.load1)),
        host(m.host.and_then(|h| h.steal_pct)),
    ];
    text.push_str(&fields.join(","));
    text.push('\n');
    append_line(path, &text, rotation)
}

/// Appends `row` (one CSV line with its newline) to `path` under the lock; first moves the file
/// aside when the row would take it past `max_bytes`, and starts every file with the header.
fn append_line(path: &Path, row: &str, rotation: &LogRotation) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let _lock = logs::lock_exclusive(&dir.join(LOCK_FILE))?;
    let mut len = match fs::metadata(path) {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
        Err(e) => return Err(e),
    };
    if len > 0 && len + row.len() as u64 > rotation.max_bytes() {
        rotate(dir, path, rotation)?;
        len = 0;
    }
    let mut text = String::with_capacity(METRICS_HEADER.len() + 1 + row.len());
    if len == 0 {
        text.push_str(METRICS_HEADER);
        text.push('\n');
    }
    text.push_str(row);
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(text.as_bytes())
}

/// Moves the live file aside as the next `metrics-<n>.csv` and deletes the oldest beyond
/// `keep`. The caller holds the lock.
fn rotate(dir: &Path, path: &Path, rotation: &LogRotation) -> io::Result<()> {
    let live = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("metrics.csv");
    let stem = live.strip_suffix(".csv").unwrap_or(live);
    let prefix = format!("{stem}-");
    let rotated = logs::rotated_files(dir, &prefix, ".csv", live)?;
    let next = rotated
        .iter()
        .filter_map(|p| {
            p.file_name()?
                .to_str()?
                .strip_prefix(&prefix)?
                .strip_suffix(".csv")?
                .parse::<u64>()
                .ok()
        })
        .max()
        .map_or(1, |n| n + 1);
    fs::rename(path, dir.join(format!("{prefix}{next:012}.csv")))?;
    let excess = (rotated.len() + 1).saturating_sub(rotation.keep() as usize);
    for old in rotated.iter().take(excess) {
        fs::remove_file(old)?;
    }
    logs::sync_dir(dir)
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

    use std::collections::HashSet;

    #[test]
    fn concurrent_writers_across_many_rotations_lose_and_duplicate_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        let rotation = LogRotation::new(1024, 1000);
        std::thread::scope(|s| {
            for writer in 0..4 {
                let path = &path;
                s.spawn(move || {
                    for n in 0..200 {
                        let row = format!("{writer},{n},{}\n", "x".repeat(20));
                        append_line(path, &row, &rotation).unwrap();
                    }
                });
            }
        });
        let files = logs::rotated_files(dir.path(), "metrics-", ".csv", "metrics.csv").unwrap();
        assert!(files.len() > 20, "{} rotated files", files.len());
        let mut seen = HashSet::new();
        for file in files.iter().chain([&path]) {
            let text = fs::read_to_string(file).unwrap();
            assert!(
                text.len() <= 1024,
                "{}: {} bytes",
                file.display(),
                text.len()
            );
            let mut lines = text.lines();
            assert_eq!(lines.next(), Some(METRICS_HEADER), "{}", file.display());
            for line in lines {
                let mut fields = line.split(',');
                let key = (
                    fields.next().unwrap().to_owned(),
                    fields.next().unwrap().to_owned(),
                );
                assert!(seen.insert(key), "{line} twice");
            }
        }
        assert_eq!(seen.len(), 800);
        assert!(!dir.path().join("metrics.csv.tmp").exists());
    }

    #[test]
    fn only_the_newest_rotated_files_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        let rotation = LogRotation::new(400, 3);
        for n in 0..100 {
            append_line(
                &path,
                &format!("row,{n:04},{}\n", "y".repeat(30)),
                &rotation,
            )
            .unwrap();
        }
        let files = logs::rotated_files(dir.path(), "metrics-", ".csv", "metrics.csv").unwrap();
        assert_eq!(files.len(), 3);
        // The newest rows survive, in order, without a gap up to the last one written.
        let mut rows = Vec::new();
        for file in files.iter().chain([&path]) {
            let text = fs::read_to_string(file).unwrap();
            rows.extend(
                text.lines()
                    .skip(1)
                    .map(|l| l[4..8].parse::<u32>().unwrap()),
            );
        }
        let first = rows[0];
        assert!(first > 0);
        assert_eq!(rows, (first..100).collect::<Vec<_>>());
        // Numbering keeps rising after deletions, so names still sort by age.
        let names: Vec<String> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert!(names[0].as_str() > "metrics-000000000001.csv");
    }

    #[test]
    fn fields_are_quoted_only_when_needed() {
        assert_eq!(field("baseline"), "baseline");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
