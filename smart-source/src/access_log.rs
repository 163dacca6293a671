//! The `access_log` source: the requests a web server logged during each block, read from its
//! access log, so the judge sees what real visitors got and smart adds no load.
//!
//! The log must be in the `smart_timing` format (`deploy/nginx/smart-log-format.conf`): nginx's
//! combined format followed by `$msec $request_time`. `$msec` is the request's end to the
//! millisecond (`$time_local` has whole seconds only, too coarse to cut blocks), `$request_time`
//! its duration to the millisecond. A request belongs to a block when it ended inside the block's
//! recorded part; answered means a status below 500, failed 500 and above.
//!
//! The log is followed across rotation: a rename (logrotate's default, then `nginx -s reopen`) is
//! noticed by the path's inode changing, and the old file is read to its end before the new one;
//! a truncation in place (`copytruncate`) by the file shrinking below the read offset, after which
//! reading starts again at the top. Lines written between the last read and a copytruncate are
//! lost to any reader; the log is read every second during a block to keep that window small.
//!
//! Thin traffic: with `fill_rps`, smart's own probe sends that many GETs (or HEADs) a second to
//! `target.urls` during every block, both arms alike, and the web server logs them like any
//! visitor's; they are measured through the log with everything else, so a block holds one kind
//! of figure (the server's `$request_time`). The caller sends that load (smart-cli, with
//! smart-probe: this crate depends on smart-core only) and hands [`AccessLogSource::run_block`]
//! its future; only the fill-in's requests that never reached the server (connection refused)
//! are counted from it, as failures the log cannot show.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use smart_core::engine::{self, BlockMeasurement, BlockRequest, LiveProgress, PortError};
use smart_core::experiment::AccessLog;

use crate::error::SourceError;
use crate::report;

/// How long after a block's end the log is read a last time (nginx writes a line when the
/// request ends; this covers the write reaching the file).
const SETTLE: Duration = Duration::from_millis(300);
/// The most bytes read from the log per poll (a very busy log is read in several polls).
const READ_CHUNK: usize = 8 * 1024 * 1024;
/// The longest line kept; longer ones (a huge URL) are skipped as unparseable.
const MAX_LINE: usize = 64 * 1024;
/// Half the log's time resolution ($request_time has milliseconds), added to every latency.
pub const HALF_RESOLUTION_US: u64 = 500;
/// The fewest answered requests a block needs for the judge to use its latency figures
/// (smart-decide counts a block's latencies from 30 answers), for `smart validate`'s warning.
pub const MIN_PER_BLOCK: f64 = 30.0;
/// The fewest requests an arm needs before the judge keeps anything (smart-decide's minimum),
/// for `smart validate`'s warning.
pub const MIN_PER_ARM: f64 = 1000.0;
/// How the format is fixed, for messages.
pub const FIX: &str = "log in the smart_timing format: include /usr/share/doc/smart/examples/nginx/smart-log-format.conf \
     in nginx's http block and write `access_log /var/log/nginx/access.log smart_timing;` \
     (see docs/experiment-format.md, measure.access_log)";

/// One logged request.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// When it ended, in seconds since the Unix epoch (millisecond resolution).
    pub end_s: f64,
    /// How long it took, in microseconds: the logged milliseconds plus half a millisecond.
    pub latency_us: u64,
    /// The response status.
    pub status: u16,
    /// The request method.
    pub method: String,
    /// The request path (with its query).
    pub path: String,
    /// Whether smart's own probe sent it (its user agent starts with `smart-probe/`): the
    /// fill-in's requests, which `smart validate` does not count as visitors.
    pub from_smart: bool,
}

/// The user agent smart's probe sends, as the log shows it.
const SMART_AGENT: &str = "\"smart-probe/";

/// Parses one `smart_timing` line; `None` when it is not one.
pub fn parse_line(line: &str) -> Option<Entry> {
    let mut tail = line.trim_end().rsplitn(3, ' ');
    let request_time: f64 = tail.next()?.parse().ok()?;
    let msec: f64 = tail.next()?.parse().ok()?;
    let head = tail.next()?;
    // $msec is seconds since the epoch with a millisecond fraction; anything else means another
    // format whose last fields happen to be numbers (e.g. combined's body bytes).
    if !(msec > 1.0e9 && request_time >= 0.0 && request_time.is_finite()) {
        return None;
    }
    let open = head.find('"')?;
    let rest = &head[open + 1..];
    let close = rest.find('"')?;
    let request = &rest[..close];
    let status: u16 = rest[close + 1..].split_whitespace().next()?.parse().ok()?;
    let mut parts = request.split(' ');
    let method = parts.next()?.to_owned();
    let path = parts.next().unwrap_or("").to_owned();
    Some(Entry {
        end_s: msec,
        // The middle of the millisecond the log rounds to: a logged 0.000 is "under 1 ms", not
        // zero (a zero has no ratio to judge), and the shift only shrinks relative changes.
        latency_us: (request_time * 1_000.0).round() as u64 * 1_000 + HALF_RESOLUTION_US,
        status,
        method,
        path,
        // The user agent is the head's last quoted field (nginx escapes quotes inside it).
        from_smart: head
            .trim_end()
            .strip_suffix('"')
            .and_then(|h| h.rfind('"').map(|i| &h[i..]))
            .is_some_and(|agent| agent.starts_with(SMART_AGENT)),
    })
}

/// Reads new lines of a log across rotation.
#[derive(Debug)]
struct Follower {
    path: PathBuf,
    file: File,
    inode: (u64, u64),
    offset: u64,
    partial: Vec<u8>,
}

impl Follower {
    /// Follows `path` from its current end.
    fn open_at_end(path: &Path) -> Result<Follower, SourceError> {
        let file = File::open(path).map_err(|e| {
            SourceError::Setup(format!(
                "measure.access_log.path {}: cannot open it ({e}); give the access log the web \
                 server writes, readable by smart",
                path.display()
            ))
        })?;
        let meta = file
            .metadata()
            .map_err(|e| SourceError::Setup(e.to_string()))?;
        Ok(Follower {
            path: path.to_owned(),
            inode: (meta.dev(), meta.ino()),
            offset: meta.len(),
            file,
            partial: Vec::new(),
        })
    }

    /// The complete lines written since the last call.
    fn poll(&mut self) -> Result<Vec<String>, SourceError> {
        let mut lines = Vec::new();
        // Renamed away: finish the old file, then follow the new one from its start.
        if let Ok(meta) = std::fs::metadata(&self.path)
            && (meta.dev(), meta.ino()) != self.inode
        {
            self.read_new(&mut lines)?;
            if let Ok(file) = File::open(&self.path) {
                self.inode = (meta.dev(), meta.ino());
                self.file = file;
                self.offset = 0;
                self.partial.clear();
            }
        }
        // Truncated in place (copytruncate): start again at the top.
        let len = self.file.metadata().map_err(|e| self.io_error(e))?.len();
        if len < self.offset {
            self.offset = 0;
            self.partial.clear();
        }
        self.read_new(&mut lines)?;
        Ok(lines)
    }

    fn read_new(&mut self, lines: &mut Vec<String>) -> Result<(), SourceError> {
        loop {
            self.file
                .seek(SeekFrom::Start(self.offset))
                .map_err(|e| self.io_error(e))?;
            let mut chunk = Vec::new();
            let n = (&mut self.file)
                .take(READ_CHUNK as u64)
                .read_to_end(&mut chunk)
                .map_err(|e| self.io_error(e))?;
            self.offset += n as u64;
            self.partial.extend_from_slice(&chunk);
            let mut start = 0;
            while let Some(end) = self.partial[start..].iter().position(|&b| b == b'\n') {
                let line = &self.partial[start..start + end];
                if line.len() <= MAX_LINE {
                    lines.push(String::from_utf8_lossy(line).into_owned());
                }
                start += end + 1;
            }
            self.partial.drain(..start);
            if self.partial.len() > MAX_LINE {
                self.partial.clear();
            }
            if n < READ_CHUNK {
                return Ok(());
            }
        }
    }

    fn io_error(&self, e: std::io::Error) -> SourceError {
        SourceError::Setup(format!(
            "measure.access_log.path {}: cannot read it ({e})",
            self.path.display()
        ))
    }
}

/// What a block of the log holds, before it becomes a measurement.
#[derive(Debug, Default)]
struct Tally {
    requests: u64,
    errors: u64,
    latencies: Vec<u64>,
    unparsed: u64,
    parsed: u64,
    /// Fill-in requests whose connection was refused (never logged).
    unreached: u64,
    /// Matching requests smart's own probe sent (the fill-in's).
    from_smart: u64,
}

/// Whether a request passes the experiment's filter (method, path prefix).
fn matches(spec: &AccessLog, e: &Entry) -> bool {
    spec.method.as_ref().is_none_or(|m| *m == e.method)
        && spec
            .path_prefix
            .as_ref()
            .is_none_or(|p| e.path.starts_with(p.as_str()))
}

/// Counts the matching requests among `lines` that ended in `[from_s, to_s)`.
fn add(spec: &AccessLog, tally: &mut Tally, lines: &[String], from_s: f64, to_s: f64) {
    for line in lines {
        let Some(entry) = parse_line(line) else {
            tally.unparsed += 1;
            continue;
        };
        tally.parsed += 1;
        if entry.end_s < from_s || entry.end_s >= to_s || !matches(spec, &entry) {
            continue;
        }
        tally.requests += 1;
        tally.from_smart += u64::from(entry.from_smart);
        if entry.status >= 500 {
            tally.errors += 1;
        } else {
            tally.latencies.push(entry.latency_us);
        }
    }
}

/// An access log, as the engine's measurement port (without a fill-in: the engine's port
/// sends nothing; with `fill_rps`, the caller sends the fill-in through
/// [`AccessLogSource::run_block`]).
#[derive(Debug)]
pub struct AccessLogSource {
    spec: AccessLog,
    follower: Follower,
}

/// What the fill-in's load reports when it ends: how many of its recorded requests never reached
/// the server (connection refused), or why it failed.
pub type FillResult = Result<u64, String>;

impl AccessLogSource {
    /// Follows the log from its current end (refused when it cannot be opened).
    pub fn new(spec: &AccessLog) -> Result<AccessLogSource, SourceError> {
        Ok(AccessLogSource {
            follower: Follower::open_at_end(Path::new(&spec.path))?,
            spec: spec.clone(),
        })
    }

    /// Waits out one block, reading the log every second, and returns the requests that ended in
    /// its recorded part (after `warmup`, for `duration`). `fill`, when given, is the fill-in's
    /// load for the same warm-up and block, run beside the reading: its requests reach the block
    /// through the log, and those it reports unreached count as failures.
    pub async fn run_block(
        &mut self,
        warmup: Duration,
        duration: Duration,
        fill: Option<impl Future<Output = FillResult>>,
        progress: &mut dyn FnMut(&LiveProgress),
    ) -> Result<BlockMeasurement, SourceError> {
        let now_s = epoch_s(SystemTime::now());
        let (from_s, to_s) = (
            now_s + warmup.as_secs_f64(),
            now_s + (warmup + duration).as_secs_f64(),
        );
        // Lines already in the file ended before the block.
        self.follower.poll()?;
        let started = tokio::time::Instant::now();
        let end = started + warmup + duration + SETTLE;
        let (spec, follower) = (&self.spec, &mut self.follower);
        let read = async move {
            let mut tally = Tally::default();
            loop {
                let next = (tokio::time::Instant::now() + Duration::from_secs(1)).min(end);
                tokio::time::sleep_until(next).await;
                let lines = follower.poll()?;
                add(spec, &mut tally, &lines, from_s, to_s);
                let elapsed = started.elapsed();
                progress(&LiveProgress {
                    warming_up: elapsed < warmup,
                    elapsed_s: elapsed.as_secs_f64(),
                    requests: tally.requests,
                    errors: tally.errors,
                    rate_per_s: tally.requests as f64
                        / elapsed.saturating_sub(warmup).as_secs_f64().max(1.0),
                    p50_us: None,
                });
                if next >= end {
                    return Ok::<_, SourceError>(tally);
                }
            }
        };
        let mut tally = match fill {
            None => read.await?,
            Some(fill) => {
                let (tally, unreached) = tokio::join!(read, fill);
                let mut tally = tally?;
                tally.unreached = unreached.map_err(|e| {
                    SourceError::Setup(format!(
                        "measure.access_log.fill_rps: the fill-in failed ({e})"
                    ))
                })?;
                tally
            }
        };
        // Requests the server never saw are not in its log: the fill-in's are failures.
        tally.requests += tally.unreached;
        tally.errors += tally.unreached;
        self.measurement(tally, duration)
    }

    fn measurement(
        &self,
        tally: Tally,
        duration: Duration,
    ) -> Result<BlockMeasurement, SourceError> {
        if tally.parsed == 0 && tally.unparsed > 0 {
            return Err(SourceError::Format(format!(
                "measure.access_log.path {}: none of the {} lines written in the block is in the \
                 smart_timing format (it needs $msec and $request_time at the end); {FIX}",
                self.spec.path, tally.unparsed
            )));
        }
        if tally.requests == 0 {
            return Err(SourceError::NoData(format!(
                "measure.access_log.path {}: no request{} ended in the block, so it cannot be \
                 judged; lengthen schedule.block_s, widen the filter, or send some load to it",
                self.spec.path,
                self.filter_words()
            )));
        }
        Ok(report::from_counts(
            tally.requests,
            tally.errors,
            tally.latencies,
            duration.as_secs_f64(),
        ))
    }

    fn filter_words(&self) -> String {
        match (&self.spec.method, &self.spec.path_prefix) {
            (None, None) => String::new(),
            (Some(m), None) => format!(" with method {m}"),
            (None, Some(p)) => format!(" under {p}"),
            (Some(m), Some(p)) => format!(" with method {m} under {p}"),
        }
    }
}

impl engine::ProbePort for AccessLogSource {
    async fn measure(
        &mut self,
        request: &BlockRequest<'_>,
        progress: &mut dyn FnMut(&LiveProgress),
    ) -> Result<BlockMeasurement, PortError> {
        self.run_block(
            request.warmup,
            request.duration,
            None::<std::future::Ready<FillResult>>,
            progress,
        )
        .await
        .map_err(PortError::new)
    }
}

/// What the last hour of a log says about a block: how many matching requests a block of
/// `block_s` can expect, for `smart validate`.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    /// Matching requests per block: the visitors' plus the fill-in's.
    pub per_block: f64,
    /// Matching requests per block from visitors, on the last hour's average (smart's own
    /// probe requests in the log are not counted).
    pub visitors_per_block: f64,
    /// The fill-in's requests per block (`fill_rps × block_s`; 0 without a fill-in).
    pub fill_per_block: f64,
    /// Lines read that are not in the `smart_timing` format.
    pub unparsed: u64,
    /// Lines in the format.
    pub parsed: u64,
}

/// Reads the last hour of `spec`'s log (at most its last 64 MiB) and estimates the matching
/// requests per block of `block_s` seconds: the visitors' on the last hour's average, plus
/// what the fill-in sends.
pub fn expect_per_block(spec: &AccessLog, block_s: f64) -> Result<Expectation, SourceError> {
    const TAIL: u64 = 64 * 1024 * 1024;
    let mut file = File::open(&spec.path).map_err(|e| {
        SourceError::Setup(format!(
            "measure.access_log.path {}: cannot open it ({e})",
            spec.path
        ))
    })?;
    let len = file
        .metadata()
        .map_err(|e| SourceError::Setup(e.to_string()))?
        .len();
    let start = len.saturating_sub(TAIL);
    file.seek(SeekFrom::Start(start))
        .and_then(|_| {
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes).map(|_| bytes)
        })
        .map_err(|e| SourceError::Setup(e.to_string()))
        .map(|bytes| {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<String> = text.lines().map(str::to_owned).collect();
            let mut tally = Tally::default();
            // The first line may be cut by the tail: it simply fails to parse.
            let now = epoch_s(SystemTime::now());
            add(spec, &mut tally, &lines, now - 3600.0, f64::INFINITY);
            let visitors = (tally.requests - tally.from_smart) as f64 / 3600.0 * block_s;
            let fill = spec.fill_rps.unwrap_or(0.0) * block_s;
            Expectation {
                per_block: visitors + fill,
                visitors_per_block: visitors,
                fill_per_block: fill,
                unparsed: tally.unparsed,
                parsed: tally.parsed,
            }
        })
}

fn epoch_s(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"127.0.0.1 - - [03/Dec/2026:12:00:00 +0000] "GET /api/items?id=3 HTTP/1.1" 200 512 "-" "curl/7.88 \x22x\x22" 1796299200.123 0.052"#;

    #[test]
    fn a_smart_timing_line_parses() {
        let e = parse_line(LINE).unwrap();
        assert_eq!(e.end_s, 1_796_299_200.123);
        assert_eq!(e.latency_us, 52_500, "the middle of the logged millisecond");
        assert_eq!(
            (e.status, e.method.as_str(), e.path.as_str()),
            (200, "GET", "/api/items?id=3")
        );
        assert!(!e.from_smart, "a visitor's");
        let fill = LINE.replace(r#""curl/7.88 \x22x\x22""#, r#""smart-probe/0.1.0""#);
        assert!(parse_line(&fill).unwrap().from_smart, "{fill}");
    }

    #[test]
    fn the_stock_formats_do_not() {
        // nginx's combined format ends in the user agent; "main" in $http_x_forwarded_for.
        let combined = r#"127.0.0.1 - - [03/Dec/2026:12:00:00 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/7.88""#;
        assert_eq!(parse_line(combined), None);
        let numbers = r#"127.0.0.1 - - [03/Dec/2026:12:00:00 +0000] "GET / HTTP/1.1" 200 612 5 6"#;
        assert_eq!(parse_line(numbers), None, "small numbers are not $msec");
        assert_eq!(parse_line(""), None);
    }

    #[test]
    fn a_bad_request_line_still_has_a_status() {
        let line = r#"127.0.0.1 - - [03/Dec/2026:12:00:00 +0000] "\x16\x03\x01" 400 157 "-" "-" 1796299200.001 0.000"#;
        let e = parse_line(line).unwrap();
        assert_eq!((e.status, e.path.as_str()), (400, ""));
        assert_eq!(
            e.latency_us, HALF_RESOLUTION_US,
            "under a millisecond is not zero"
        );
    }
}
