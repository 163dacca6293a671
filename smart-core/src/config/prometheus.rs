//! `[prometheus]` in `smart.toml`: where `smart run` writes its metrics for node_exporter's
//! textfile collector, and the loopback address it may serve `/metrics` on.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::reader::Reader;

/// The keys of `[prometheus]`.
const KEYS: &[&str] = &["textfile", "listen"];

/// Where `smart run` publishes its metrics (`[prometheus]`); both are off by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrometheusConfig {
    textfile: Option<PathBuf>,
    listen: Option<SocketAddr>,
}

impl PrometheusConfig {
    /// The file `smart run` rewrites atomically after every event, for node_exporter's textfile
    /// collector (a name ending in `.prom` inside its `--collector.textfile.directory`).
    pub fn textfile(&self) -> Option<&Path> {
        self.textfile.as_deref()
    }

    /// The loopback address a long-running `smart run` serves `/metrics` on.
    pub fn listen(&self) -> Option<SocketAddr> {
        self.listen
    }
}

/// Reads `[prometheus]`: `textfile` (a path ending in `.prom`, relative to the config file's
/// directory) and `listen` (a loopback `IP:PORT`: the metrics name experiments and hosts, so they
/// are not served beyond the machine; a Prometheus elsewhere scrapes node_exporter instead).
pub(super) fn read(r: &mut Reader, value: &Value, base: &Path) -> PrometheusConfig {
    let mut config = PrometheusConfig::default();
    let Some(map) = r.object(value, "prometheus", KEYS, &|_| None) else {
        return config;
    };
    if let Some(v) = map.get("textfile")
        && let Some(path) = r.string(
            v,
            "prometheus.textfile",
            "a file path like \"/var/lib/prometheus/node-exporter/smart.prom\"",
        )
    {
        if path.ends_with(".prom") && !path.ends_with("/.prom") {
            config.textfile = Some(base.join(path));
        } else {
            r.problem(
                "prometheus.textfile",
                format!(
                    "\"{path}\" does not end in .prom, so node_exporter's textfile collector would ignore it; name the file like \"/var/lib/prometheus/node-exporter/smart.prom\""
                ),
            );
        }
    }
    if let Some(v) = map.get("listen")
        && let Some(text) = r.string(v, "prometheus.listen", "an address like \"127.0.0.1:9864\"")
    {
        match text.parse::<SocketAddr>() {
            Ok(addr) if addr.ip().is_loopback() => config.listen = Some(addr),
            Ok(addr) => r.problem(
                "prometheus.listen",
                format!(
                    "{addr} is not a loopback address: smart serves /metrics on 127.0.0.1 or [::1] only, since the metrics name your experiments; use e.g. \"127.0.0.1:{}\" and let a Prometheus elsewhere scrape node_exporter's textfile collector (textfile = ...) or a proxy you control",
                    addr.port()
                ),
            ),
            Err(_) => r.problem(
                "prometheus.listen",
                format!("\"{text}\" is not IP:PORT; use e.g. \"127.0.0.1:9864\""),
            ),
        }
    }
    config
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::AgentConfig;

    fn check(text: &str, expected: Result<(Option<&str>, Option<&str>), &str>) {
        let got = AgentConfig::from_toml(text, Path::new("/etc/smart/smart.toml"));
        match (got, expected) {
            (Ok(config), Ok((textfile, listen))) => {
                let p = config.prometheus();
                assert_eq!(p.textfile(), textfile.map(Path::new), "{text}");
                assert_eq!(
                    p.listen().map(|a| a.to_string()).as_deref(),
                    listen,
                    "{text}"
                );
            }
            (Err(invalid), Err(message)) => {
                let shown = invalid.to_string();
                assert!(shown.contains(message), "{text}: {shown}");
            }
            (got, expected) => panic!("{text}: got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn prometheus_section_is_read_and_checked() {
        check("", Ok((None, None)));
        check(
            "[prometheus]\ntextfile = \"/var/lib/prometheus/node-exporter/smart.prom\"\n",
            Ok((Some("/var/lib/prometheus/node-exporter/smart.prom"), None)),
        );
        check(
            "[prometheus]\ntextfile = \"out/smart.prom\"\nlisten = \"127.0.0.1:9864\"\n",
            Ok((Some("/etc/smart/out/smart.prom"), Some("127.0.0.1:9864"))),
        );
        check(
            "[prometheus]\nlisten = \"[::1]:9864\"\n",
            Ok((None, Some("[::1]:9864"))),
        );
        check(
            "[prometheus]\nlisten = \"0.0.0.0:9864\"\n",
            Err("prometheus.listen: 0.0.0.0:9864 is not a loopback address"),
        );
        check(
            "[prometheus]\nlisten = \"localhost:9864\"\n",
            Err("prometheus.listen: \"localhost:9864\" is not IP:PORT"),
        );
        check(
            "[prometheus]\ntextfile = \"/tmp/smart.txt\"\n",
            Err("prometheus.textfile: \"/tmp/smart.txt\" does not end in .prom"),
        );
        check(
            "[prometheus]\ntextfle = \"x.prom\"\n",
            Err("prometheus.textfle: unknown key; did you mean \"textfile\"?"),
        );
    }
}
