//! The measurement port of a run: the experiment's `measure.source` picks smart's own probe or
//! another source (smart-source), and either way each block also records what the host did.

use smart_core::Experiment;
use smart_core::engine::{self, BlockMeasurement, BlockRequest, LiveProgress, PortError};
use smart_core::experiment::SourceKind;
use smart_probe::{BlockPlan, EngineProbe, HostSnapshot, Load, NoProgress, ProbeConfig};
use smart_source::{AccessLogSource, CommandSource, PrometheusSource};

/// The source that measures each block of one experiment.
#[derive(Debug)]
pub(crate) enum Source {
    /// smart's own open-loop HTTP probe (it reads the host's pressure itself).
    Probe(Box<EngineProbe>),
    /// A command run once per block.
    Command(CommandSource),
    /// The requests a web server logged during each block, and the fill-in's probe when
    /// `fill_rps` is set (its requests are logged and measured with the visitors').
    AccessLog(AccessLogSource, Option<Box<smart_probe::Probe>>),
    /// PromQL over each block's window.
    Prometheus(PrometheusSource),
}

impl Source {
    /// The experiment's source, set up (a missing program or a bad target is found now, before
    /// anything changes). The probe's client needs a tokio runtime's context.
    pub(crate) fn new(experiment: &Experiment) -> Result<Source, String> {
        let measure = experiment.measure();
        let missing = |key: &str| format!("measure.{key} is missing for the {key} source");
        match measure.source {
            SourceKind::Command => match &measure.command {
                Some(spec) => CommandSource::new(spec)
                    .map(Source::Command)
                    .map_err(|e| e.to_string()),
                None => Err(missing("command")),
            },
            SourceKind::AccessLog => match &measure.access_log {
                Some(spec) => {
                    let log = AccessLogSource::new(spec).map_err(|e| e.to_string())?;
                    let fill = match spec.fill_rps {
                        Some(rate_per_s) => Some(Box::new(fill_in(experiment, rate_per_s)?)),
                        None => None,
                    };
                    Ok(Source::AccessLog(log, fill))
                }
                None => Err(missing("access_log")),
            },
            SourceKind::Prometheus => match &measure.prometheus {
                Some(spec) => {
                    // The one place the header's value is read; it goes nowhere but the request.
                    let auth = match &spec.auth_header_env {
                        Some(name) => Some(std::env::var(name).map_err(|_| {
                            format!(
                                "measure.prometheus.auth_header_env: the environment variable \
                                 {name} is not set (or not UTF-8); export it for smart run"
                            )
                        })?),
                        None => None,
                    };
                    PrometheusSource::new(spec, auth.as_deref())
                        .map(Source::Prometheus)
                        .map_err(|e| e.to_string())
                }
                None => Err(missing("prometheus")),
            },
            SourceKind::Probe => match experiment.probe_target() {
                Some(target) => Ok(Source::Probe(Box::new(EngineProbe::new(target)))),
                None => Err("target.urls is missing for the probe source".to_owned()),
            },
        }
    }
}

impl engine::ProbePort for Source {
    async fn measure(
        &mut self,
        request: &BlockRequest<'_>,
        progress: &mut dyn FnMut(&LiveProgress),
    ) -> Result<BlockMeasurement, PortError> {
        match self {
            Source::Probe(probe) => probe.measure(request, progress).await,
            Source::Command(command) => with_host(command.measure(request, progress)).await,
            Source::AccessLog(log, None) => with_host(log.measure(request, progress)).await,
            Source::AccessLog(log, Some(probe)) => {
                // The fill-in's load over the same warm-up and block, beside the log's reading.
                let plan = BlockPlan {
                    warmup: request.warmup,
                    measure: request.duration,
                    guard: None,
                };
                let fill = async {
                    probe
                        .run_block(plan, &NoProgress)
                        .await
                        .map(|result| result.counts.connect)
                        .map_err(|e| e.to_string())
                };
                with_host(async {
                    log.run_block(request.warmup, request.duration, Some(fill), progress)
                        .await
                        .map_err(PortError::new)
                })
                .await
            }
            Source::Prometheus(prom) => with_host(prom.measure(request, progress)).await,
        }
    }
}

/// The access log's fill-in: smart's probe at `rate_per_s` to the experiment's `target` (its
/// URLs, method, headers and timeout), without a guard (the log's figures are judged).
fn fill_in(experiment: &Experiment, rate_per_s: f64) -> Result<smart_probe::Probe, String> {
    let target = experiment
        .probe_target()
        .ok_or("measure.access_log.fill_rps: the fill-in needs target.urls")?;
    ProbeConfig::new(target)
        .into_builder()
        .load(Load::Open { rate_per_s })
        .build()
        .and_then(smart_probe::Probe::new)
        .map_err(|e| {
            format!(
                "measure.access_log.fill_rps: cannot set up the fill-in ({e}); give target.urls \
                 of the server that writes the log"
            )
        })
}

/// A block's measurement with what the host did meanwhile (the judge compares partner blocks).
async fn with_host(
    block: impl Future<Output = Result<BlockMeasurement, PortError>>,
) -> Result<BlockMeasurement, PortError> {
    let start = HostSnapshot::read();
    let mut m = block.await?;
    m.host = Some(start.pressure(&HostSnapshot::read()));
    Ok(m)
}

/// What `smart validate` says about an experiment's source beyond the file: for an access log,
/// how many matching requests a block can expect from the last hour of the log, and whether the
/// log is in the format the source reads. Nothing for the other sources.
pub(crate) fn notes(experiment: &Experiment) -> Vec<String> {
    let (SourceKind::AccessLog, Some(spec)) = (
        experiment.measure().source,
        &experiment.measure().access_log,
    ) else {
        return Vec::new();
    };
    let block_s = experiment.schedule().block_s;
    let expectation = match smart_source::access_log::expect_per_block(spec, block_s) {
        Ok(e) => e,
        Err(e) => return vec![format!("measure: {e}")],
    };
    let mut notes = Vec::new();
    if expectation.parsed == 0 && expectation.unparsed > 0 {
        notes.push(format!(
            "measure: warning: none of the last {} lines of {} is in the smart_timing format (it needs $status, then $msec and $request_time at the end); {}",
            expectation.unparsed,
            spec.path,
            smart_source::access_log::FIX
        ));
        return notes;
    }
    let per_block = expectation.per_block;
    let visitors = expectation.visitors_per_block;
    notes.push(match spec.fill_rps {
        None => format!(
            "measure: the last hour of {} gives about {visitors:.0} matching requests per \
             {block_s} s block",
            spec.path
        ),
        Some(fill_rps) => format!(
            "measure: the last hour of {} gives about {visitors:.0} matching visitor requests \
             per {block_s} s block, plus {:.0} from the fill-in ({fill_rps}/s): about \
             {per_block:.0} per block",
            spec.path, expectation.fill_per_block
        ),
    });
    let needed = smart_source::access_log::MIN_PER_BLOCK;
    if per_block < needed {
        let rate = per_block / block_s;
        let fill_needed = ((needed - visitors) / block_s).ceil();
        let hint = if rate > 0.0 {
            format!(
                "lengthen schedule.block_s to at least {:.0} s, set measure.access_log.fill_rps \
                 to at least {fill_needed} (with target.urls), or run it in busier hours",
                (needed / rate).ceil()
            )
        } else {
            format!(
                "no request matched in the last hour: check the path, the filter and the log \
                 format, or set measure.access_log.fill_rps to at least {fill_needed} (with \
                 target.urls)"
            )
        };
        notes.push(format!(
            "measure: warning: a block needs at least {needed:.0} answered requests for the judge to use its latency; {hint}"
        ));
    } else {
        // Enough per block; enough per arm over the whole schedule for a keep?
        let schedule = experiment.schedule();
        let blocks_per_arm = schedule.max_cycles * if schedule.interleave { 2 } else { 1 };
        let per_arm = per_block * f64::from(blocks_per_arm);
        let needed = smart_source::access_log::MIN_PER_ARM;
        if per_arm < needed {
            notes.push(format!(
                "measure: warning: {blocks_per_arm} blocks per arm give about {per_arm:.0} \
                 requests, and the judge keeps nothing below {needed:.0} per arm; raise \
                 schedule.max_cycles to at least {:.0}, lengthen schedule.block_s, or raise \
                 measure.access_log.fill_rps",
                (needed / per_block / f64::from(blocks_per_arm / schedule.max_cycles)).ceil()
            ));
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// A log of the last hour: `visitors` requests under /api/ and `smart` from smart's probe.
    fn log(visitors: usize, smart: usize) -> tempfile::NamedTempFile {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let mut text = String::new();
        for (i, agent) in std::iter::repeat_n("curl/8.0", visitors)
            .chain(std::iter::repeat_n("smart-probe/0.1.0", smart))
            .enumerate()
        {
            text.push_str(&format!(
                "127.0.0.1 - - [03/Dec/2026:12:00:00 +0000] \"GET /api/x HTTP/1.1\" 200 5 \"-\" \
                 \"{agent}\" {:.3} 0.004\n",
                now - 1.0 - i as f64
            ));
        }
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    fn notes_for(log: &Path, access_log: serde_json::Value, schedule: serde_json::Value) -> String {
        let mut spec = serde_json::json!({"path": log, "path_prefix": "/api/"});
        spec.as_object_mut()
            .unwrap()
            .extend(access_log.as_object().unwrap().clone());
        let json = serde_json::json!({
            "name": "log", "target": {"urls": ["http://127.0.0.1/api/health"]},
            "measure": {"source": "access_log", "access_log": spec},
            "apply": {"files": [{"path": "/etc/nginx/conf.d/x.conf", "template": "{{ v }}\n"}]},
            "variants": [{"name": "b", "params": {"v": "b"}}],
            "schedule": schedule,
        });
        let experiment = smart_core::validate::validate_text(
            &json.to_string(),
            "log.json".as_ref(),
            &smart_core::Defaults::default(),
        )
        .unwrap();
        notes(&experiment).join("\n")
    }

    #[test]
    fn validate_counts_visitors_and_the_fill_in_apart() {
        // 360 visitors an hour: one per 10 s block. smart's own 1,000 are not visitors.
        let file = log(360, 1000);
        let thin = notes_for(
            file.path(),
            serde_json::json!({}),
            serde_json::json!({"block_s": 10, "max_cycles": 8}),
        );
        assert!(
            thin.contains("about 1 matching requests per 10 s block"),
            "{thin}"
        );
        assert!(
            thin.contains("set measure.access_log.fill_rps to at least 3"),
            "{thin}"
        );
        let filled = notes_for(
            file.path(),
            serde_json::json!({"fill_rps": 5}),
            serde_json::json!({"block_s": 10, "max_cycles": 8}),
        );
        assert!(
            filled.contains(
                "about 1 matching visitor requests per 10 s block, plus 50 from the fill-in \
                 (5/s): about 51 per block"
            ),
            "{filled}"
        );
        // 51 a block over 16 blocks per arm (8 interleaved cycles) is 816: too few for a keep.
        assert!(
            filled.contains("16 blocks per arm give about 816 requests")
                && filled.contains("max_cycles to at least 10"),
            "{filled}"
        );
        let enough = notes_for(
            file.path(),
            serde_json::json!({"fill_rps": 5}),
            serde_json::json!({"block_s": 10, "max_cycles": 20, "max_duration_s": 3600}),
        );
        assert!(!enough.contains("warning"), "{enough}");
    }

    #[test]
    fn validate_names_the_fix_for_a_log_in_another_format() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            file.path(),
            "127.0.0.1 - - [03/Dec/2026:12:00:00 +0000] \"GET /api/x HTTP/1.1\" 200 5 \"-\" \"curl\"\n",
        )
        .unwrap();
        let notes = notes_for(
            file.path(),
            serde_json::json!({}),
            serde_json::json!({"block_s": 10}),
        );
        assert!(
            notes.contains("warning: none of the last 1 lines")
                && notes.contains("$msec and $request_time")
                && notes.contains("smart-log-format.conf"),
            "{notes}"
        );
    }

    #[test]
    fn an_unset_prometheus_auth_variable_stops_the_run_before_anything_changes() {
        let json = serde_json::json!({
            "name": "prom",
            "measure": {"source": "prometheus", "prometheus": {
                "url": "http://127.0.0.1:9", "scrape_interval_s": 1,
                "latency_quantile": "histogram_quantile($quantile, sum by (le) (rate(h[$window])))",
                "latency_mean": "sum(rate(s[$window]))", "requests": "sum(increase(r[$window]))",
                "error_ratio": "sum(increase(e[$window]))",
                "auth_header_env": "SMART_TEST_NEVER_SET_AUTH"}},
            "apply": {"files": [{"path": "/etc/x.conf", "template": "{{ v }}\n"}]},
            "variants": [{"name": "b", "params": {"v": "b"}}],
        });
        let experiment = smart_core::validate::validate_text(
            &json.to_string(),
            "prom.json".as_ref(),
            &smart_core::Defaults::default(),
        )
        .unwrap();
        let err = Source::new(&experiment).unwrap_err();
        assert!(
            err.contains("SMART_TEST_NEVER_SET_AUTH is not set") && err.contains("export it"),
            "{err}"
        );
    }
}
