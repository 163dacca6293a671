//! `smart probe URL`: a standalone measurement with the probe experiments use, printed like oha's
//! summary (or as JSON), so users can check a target and compare with other load tools.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use smart_core::experiment::{Method, Target};
use smart_probe::{
    BlockPlan, BlockResult, LatencyHistogram, Load, Outcome, Probe, ProbeConfig, ProbeError,
    Progress,
};

use crate::Global;
use crate::error::CliError;

/// The default open-loop rate, as an experiment's `target.rate_per_s`.
const DEFAULT_RATE: f64 = 50.0;
/// The default connections of `--max`.
const DEFAULT_MAX_CONNECTIONS: usize = 16;
/// Rows of the text latency histogram.
const HISTOGRAM_ROWS: usize = 10;
/// Width of the longest histogram bar.
const BAR_WIDTH: usize = 40;

/// Measure one URL: latency percentiles, outcomes and the achieved rate
///
/// By default an open loop: requests go out on a fixed timetable at --rate, whatever the server
/// does, and each latency counts from the request's intended send time (up to 5 ms of the probe's
/// own timer lateness excepted), so a stall cannot hide (coordinated omission corrected, like wrk2
/// and `oha --latency-correction`). --max is a closed loop instead: --concurrency connections,
/// each sending as soon as its last answer arrived. Values of Authorization, Proxy-Authorization
/// and Cookie headers are never printed.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::error::EXIT_CODES_HELP)]
pub(crate) struct Args {
    /// The http:// or https:// URL to request
    url: String,
    /// Requests per second, on a fixed timetable (open loop) [default: 50]
    #[arg(long, value_name = "N", conflicts_with = "max")]
    rate: Option<f64>,
    /// Closed loop: as many requests as --concurrency connections can carry
    #[arg(long)]
    max: bool,
    /// How long to measure: 30s, 500ms, 2m, or plain seconds
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    duration: Duration,
    /// Load sent first and not recorded: 2s, 500ms, ...
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    warmup: Duration,
    /// With --max the connections [default: 16]; otherwise the cap on requests in flight, past
    /// which a due request counts as `overload` [default: 256]
    #[arg(long, short = 'c', value_name = "N")]
    concurrency: Option<usize>,
    /// A request header as `Name: value`; repeat for more
    #[arg(long = "header", short = 'H', value_name = "K:V")]
    headers: Vec<String>,
    /// How long a request may take before it counts as a timeout
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    timeout: Duration,
    /// Send HEAD instead of GET
    #[arg(long)]
    head: bool,
    /// Print the result as one JSON object (without the raw samples) instead of the summary
    #[arg(long)]
    json: bool,
}

/// Runs the measurement and prints the summary or the JSON.
pub(crate) fn run(args: &Args, _global: &Global) -> Result<ExitCode, CliError> {
    let config = config(args)?;
    let probe = Probe::new(config).map_err(probe_error)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::runtime(format!("cannot start the async runtime: {e}")))?;
    let plan = BlockPlan {
        warmup: args.warmup,
        measure: args.duration,
        guard: None,
    };
    let live = !args.json && !crate::logs::quiet() && std::io::stderr().is_terminal();
    let sink = move |p: &Progress| {
        if live {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K{}", progress_line(p));
            let _ = err.flush();
        }
    };
    let result = runtime
        .block_on(probe.run_block(plan, &sink))
        .map_err(probe_error)?;
    if live {
        eprint!("\r\x1b[K");
    }
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        write_json(&mut out, args, probe.config(), &result)
    } else {
        write_summary(&mut out, args, probe.config(), &result)
    };
    written.map_err(|e| CliError::runtime(format!("cannot write the result: {e}")))?;
    if result.counts.ok + result.counts.bad_status == 0 {
        return Err(CliError::runtime(format!(
            "{} never answered: {} requests, {} connect errors, {} timeouts; check that the server \
             runs and listens at that address and port (`ss -ltn`; `smart init` prints the URL \
             nginx serves), or raise --timeout",
            args.url,
            result.counts.total(),
            result.counts.connect,
            result.counts.timeout
        )));
    }
    Ok(ExitCode::SUCCESS)
}

/// The probe settings the arguments describe.
fn config(args: &Args) -> Result<ProbeConfig, CliError> {
    let mut headers = BTreeMap::new();
    for (i, header) in args.headers.iter().enumerate() {
        // The message never repeats the argument: it may hold a credential.
        let (name, value) = header
            .split_once(':')
            .map(|(n, v)| (n.trim(), v.trim()))
            .filter(|(n, _)| !n.is_empty())
            .ok_or_else(|| {
                CliError::bad_input(format!(
                    "--header #{}: expected `Name: value`, e.g. `Accept: text/html`",
                    i + 1
                ))
            })?;
        headers.insert(name.to_owned(), value.to_owned());
    }
    let timeout_ms = u64::try_from(args.timeout.as_millis()).unwrap_or(u64::MAX);
    let target = Target {
        urls: vec![args.url.clone()],
        method: if args.head { Method::Head } else { Method::Get },
        headers,
        rate_per_s: args.rate.unwrap_or(DEFAULT_RATE),
        timeout_ms,
        ok_status: (200..300).collect(),
    };
    let mut builder = ProbeConfig::builder(&target);
    if args.max {
        builder = builder.load(Load::Closed {
            connections: args.concurrency.unwrap_or(DEFAULT_MAX_CONNECTIONS),
        });
    } else if let Some(cap) = args.concurrency {
        builder = builder.max_in_flight(cap);
    }
    builder.build().map_err(probe_error)
}

/// A probe error as the CLI user sees it: the flag instead of the experiment field.
fn probe_error(error: ProbeError) -> CliError {
    let (Some(field), Some(problem)) = (error.field(), error.problem()) else {
        return CliError::runtime(error);
    };
    let flag = match field {
        f if f.starts_with("target.urls") => "URL".to_owned(),
        "target.rate_per_s" => "--rate".to_owned(),
        "target.timeout_ms" => "--timeout".to_owned(),
        "connections" | "max_in_flight" => "--concurrency".to_owned(),
        "duration" => "--duration".to_owned(),
        f => match f.strip_prefix("target.headers.") {
            Some(name) => format!("--header {name}"),
            None => f.to_owned(),
        },
    };
    CliError::bad_input(format!("{flag}: {problem}"))
}

/// Parses `30s`, `500ms`, `2m`, `1h` or plain (fractional) seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Some(rest) = text.strip_prefix('-') {
        return Err(format!(
            "durations cannot be negative; write a length of time such as {}",
            if rest.is_empty() { "30s" } else { rest }
        ));
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 0.001,
        "m" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("unknown unit `{other}`; use ms, s, m or h")),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration; write e.g. 30s or 500ms"))?;
    Duration::try_from_secs_f64(value * scale)
        .map_err(|_| format!("`{text}` is not a duration; write e.g. 30s or 500ms"))
}

fn progress_line(p: &Progress) -> String {
    let phase = if p.warming_up { "warm-up" } else { "measuring" };
    let p50 = p.p50_us.map_or("-".to_owned(), ms);
    format!(
        "{phase} {:.1} s: {} requests, {} errors, {:.0} req/s now, p50 {p50}",
        p.elapsed_s, p.samples, p.errors, p.current_rate_per_s
    )
}

fn ms(us: u64) -> String {
    format!("{:.3} ms", us as f64 / 1000.0)
}

/// The oha-like text summary.
fn write_summary(
    out: &mut impl Write,
    args: &Args,
    config: &ProbeConfig,
    result: &BlockResult,
) -> std::io::Result<()> {
    let method = if args.head { "HEAD" } else { "GET" };
    writeln!(out, "Summary:")?;
    writeln!(out, "  Target:        {method} {}", args.url)?;
    for (name, value) in config.headers_redacted() {
        writeln!(out, "  Header:        {name}: {value}")?;
    }
    match result.load {
        Load::Open { rate_per_s } => writeln!(
            out,
            "  Load:          open loop at {rate_per_s} req/s, at most {} in flight \
             (latency from the intended send time)",
            config.max_in_flight()
        )?,
        Load::Closed { connections } => {
            writeln!(
                out,
                "  Load:          closed loop, {connections} connections"
            )?;
        }
    }
    writeln!(out, "  Duration:      {:.2} s", result.duration_s)?;
    writeln!(
        out,
        "  Sent:          {} requests, {:.1} req/s",
        result.sent, result.achieved_rate_per_s
    )?;
    writeln!(
        out,
        "  Answered:      {:.1} responses/s",
        result.throughput_per_s
    )?;
    writeln!(
        out,
        "  Success rate:  {:.2} %",
        100.0 - result.error_rate_pct
    )?;
    if result.retried > 0 {
        writeln!(
            out,
            "  Retried:       {} (kept-alive connection closed by the server)",
            result.retried
        )?;
    }
    if result.late > 0 {
        writeln!(
            out,
            "  Late sends:    {} (more than 5 ms behind the timetable: the probe was short of CPU)",
            result.late
        )?;
    }
    if let Some(abort) = &result.abort {
        writeln!(out, "  Stopped early: {abort}")?;
    }
    writeln!(out)?;
    writeln!(out, "Outcomes:")?;
    for outcome in Outcome::ALL {
        writeln!(
            out,
            "  {:<11} {:>9}",
            outcome.as_str(),
            result.counts.get(outcome)
        )?;
    }
    if !result.status_counts.is_empty() {
        writeln!(out)?;
        writeln!(out, "Status codes:")?;
        for (status, count) in &result.status_counts {
            writeln!(out, "  [{status}] {count} responses")?;
        }
    }
    writeln!(out)?;
    match &result.latency {
        None => writeln!(out, "Latency: no ok responses")?,
        Some(l) => {
            writeln!(out, "Latency (ok responses):")?;
            for (name, us) in [
                ("p50", l.p50_us),
                ("p90", l.p90_us),
                ("p99", l.p99_us),
                ("p99.9", l.p999_us),
                ("max", l.max_us),
            ] {
                writeln!(out, "  {name:<6} {:>12}", ms(us))?;
            }
            writeln!(out, "  {:<6} {:>9.3} ms", "mean", l.mean_us / 1000.0)?;
            writeln!(out)?;
            writeln!(out, "Latency histogram:")?;
            let rows = histogram_rows(&result.histogram);
            let top = rows.iter().map(|r| r.1).max().unwrap_or(1).max(1);
            for (upper_us, count) in rows {
                let bar = usize::try_from(count * BAR_WIDTH as u64 / top).unwrap_or(BAR_WIDTH);
                writeln!(
                    out,
                    "  {:>12} [{count:>8}] |{}",
                    ms(upper_us),
                    "■".repeat(bar)
                )?;
            }
        }
    }
    Ok(())
}

/// The histogram in a few rows `(upper bound in µs, count)`: log-spaced from the fastest to the
/// slowest when they are far apart (latency tails are long), else evenly spaced.
fn histogram_rows(histogram: &LatencyHistogram) -> Vec<(u64, u64)> {
    let buckets = histogram.buckets();
    let (Some(first), Some(last)) = (buckets.first(), buckets.last()) else {
        return Vec::new();
    };
    let (low, high) = (first.0.max(1) as f64, last.0 as f64);
    if low >= high {
        return vec![(last.0, histogram.len())];
    }
    let log = high / low >= 20.0;
    let upper = |i: usize| {
        let f = i as f64 / HISTOGRAM_ROWS as f64;
        if log {
            low * (high / low).powf(f)
        } else {
            low + (high - low) * f
        }
    };
    let mut rows: Vec<(u64, u64)> = (1..=HISTOGRAM_ROWS)
        .map(|i| (upper(i).round() as u64, 0))
        .collect();
    if let Some(row) = rows.last_mut() {
        row.0 = last.0;
    }
    for (value, count) in buckets {
        let row = rows
            .iter_mut()
            .find(|r| value <= r.0)
            .expect("the last row's bound is the highest value");
        row.1 += count;
    }
    rows
}

/// The JSON output: the block result without its raw samples, with the target it measured.
fn write_json(
    out: &mut impl Write,
    args: &Args,
    config: &ProbeConfig,
    result: &BlockResult,
) -> std::io::Result<()> {
    let mut value = serde_json::to_value(result)?;
    if let Some(object) = value.as_object_mut() {
        object.remove("samples");
        let headers: serde_json::Map<String, serde_json::Value> = config
            .headers_redacted()
            .into_iter()
            .map(|(name, value)| (name, value.into()))
            .collect();
        object.insert("url".into(), args.url.clone().into());
        object.insert(
            "method".into(),
            if args.head { "HEAD" } else { "GET" }.into(),
        );
        object.insert("headers".into(), headers.into());
    }
    serde_json::to_writer_pretty(&mut *out, &value)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use smart_probe::{BlockMeta, BlockRecorder};

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn args(argv: &[&str]) -> Args {
        Cli::try_parse_from([&["probe"], argv].concat())
            .unwrap()
            .args
    }

    #[test]
    fn durations_parse() {
        let check = |text: &str, want: Option<f64>| {
            assert_eq!(
                parse_duration(text).ok(),
                want.map(Duration::from_secs_f64),
                "{text}"
            );
        };
        check("30s", Some(30.0));
        check("500ms", Some(0.5));
        check("2m", Some(120.0));
        check("1.5", Some(1.5));
        check("1h", Some(3600.0));
        check("10 s", Some(10.0));
        check("", None);
        check("5d", None);
        check("-3s", None);
        check("fast", None);
        // A negative duration says so, and offers the positive one (issue 16: it said
        // "unknown unit `-2s`").
        assert_eq!(
            parse_duration("-2s").unwrap_err(),
            "durations cannot be negative; write a length of time such as 2s"
        );
    }

    #[test]
    fn arguments_become_probe_settings() {
        let config = config(&args(&["http://127.0.0.1:1/", "--rate", "200", "-c", "8"])).unwrap();
        assert_eq!(config.load(), Load::Open { rate_per_s: 200.0 });
        assert_eq!(config.max_in_flight(), 8);
        let config = config_of(&["http://127.0.0.1:1/", "--max"]);
        assert_eq!(config.load(), Load::Closed { connections: 16 });
        let config = config_of(&["http://127.0.0.1:1/", "--timeout", "250ms"]);
        assert_eq!(config.timeout(), Duration::from_millis(250));
        assert!(Cli::try_parse_from(["probe", "http://a/", "--max", "--rate", "5"]).is_err());
    }

    fn config_of(argv: &[&str]) -> ProbeConfig {
        config(&args(argv)).unwrap()
    }

    #[test]
    fn bad_arguments_name_the_flag_and_never_echo_a_header() {
        let check = |argv: &[&str], want: &str| {
            let err = config(&args(argv)).unwrap_err();
            let mut text = Vec::new();
            err.write_chain(&mut text).unwrap();
            let text = String::from_utf8(text).unwrap();
            assert!(text.contains(want), "{text}");
            assert!(!text.contains("s3cret"), "{text}");
            assert_eq!(err.exit_code(), ExitCode::from(2));
        };
        check(
            &["ftp://x/"],
            "URL: `ftp://x/` is not an http:// or https:// URL",
        );
        check(&["http://a/", "--rate", "0"], "--rate: ");
        check(&["http://a/", "--max", "-c", "0"], "--concurrency: ");
        check(
            &["http://a/", "-H", "Authorization Bearer s3cret"],
            "--header #1: expected",
        );
        check(
            &["http://a/", "-H", "Cookie: s3\ncret"],
            "--header Cookie: ",
        );
    }

    fn result() -> BlockResult {
        let mut recorder = BlockRecorder::new(1000);
        for i in 0..100u64 {
            recorder.record(
                Duration::from_millis(i * 10),
                Duration::from_micros(200 + i * i * 10),
                Outcome::Ok,
                Some(200),
            );
        }
        recorder.record(
            Duration::ZERO,
            Duration::from_millis(1),
            Outcome::BadStatus,
            Some(503),
        );
        recorder.finish(BlockMeta {
            load: Load::Open { rate_per_s: 101.0 },
            warmup: Duration::ZERO,
            duration: Duration::from_secs(1),
            abort: None,
        })
    }

    #[test]
    fn the_summary_shows_rates_outcomes_percentiles_and_a_histogram_but_no_secret() {
        let argv = [
            "http://127.0.0.1:1/",
            "-H",
            "Authorization: Bearer s3cret",
            "-H",
            "X-A: b",
        ];
        let args = args(&argv);
        let config = config(&args).unwrap();
        let mut out = Vec::new();
        write_summary(&mut out, &args, &config, &result()).unwrap();
        let text = String::from_utf8(out).unwrap();
        for want in [
            "Target:        GET http://127.0.0.1:1/",
            "Header:        authorization: <redacted>",
            "Header:        x-a: b",
            "open loop at 101 req/s, at most 256 in flight",
            "Sent:          101 requests, 101.0 req/s",
            "Success rate:  99.01 %",
            "ok                100",
            "bad_status          1",
            "[503] 1 responses",
            "p99.9",
            "Latency histogram:",
            "■",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
        assert!(!text.contains("s3cret"), "{text}");
        let rows = histogram_rows(&result().histogram);
        assert_eq!(rows.len(), HISTOGRAM_ROWS);
        assert_eq!(rows.iter().map(|r| r.1).sum::<u64>(), 100);
        assert!(rows.windows(2).all(|w| w[0].0 < w[1].0), "{rows:?}");

        let mut out = Vec::new();
        write_json(&mut out, &args, &config, &result()).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(json["headers"]["authorization"], "<redacted>");
        assert_eq!(json["counts"]["ok"], 100);
        assert_eq!(json["status_counts"]["503"], 1);
        assert!(json.get("samples").is_none());
        assert!(json["latency"]["p99_us"].as_u64().unwrap() > 0);
        assert!(!String::from_utf8(out).unwrap().contains("s3cret"));
    }
}
