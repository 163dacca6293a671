//! The built-in catalog of knobs a search may tune: each with a safe range and a one-line
//! rationale, for `smart init --detect` to turn the knobs present on a machine into experiment
//! and search files, and [`Knob::window`] to centre a knob's values on what the machine has now.
//! Data and pure arithmetic only: detecting what a machine has is the detector's job
//! (smart-apply's `detect`), and writing files is the CLI's.

use smart_core::experiment::{Choices, Domain, IntRange, ParamValue, Scale};

/// What a knob belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// An nginx directive, changed through the config and `nginx -s reload`.
    Nginx,
    /// A Linux sysctl.
    Kernel,
    /// A PostgreSQL setting, written to a file of the cluster's `include_dir`.
    Postgres,
}

/// How the shipped deployment lets the agent change a knob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deploy {
    /// An nginx directive: the agent edits its config and reloads nginx, which the shipped polkit
    /// rule allows.
    NginxReload,
    /// A sysctl the shipped deployment sets through this templated unit, the value being the
    /// instance (its polkit rule and the unit admit exactly the catalog's values; a test checks).
    Unit(&'static str),
    /// A PostgreSQL setting made live by `SELECT pg_reload_conf()`.
    PostgresReload,
    /// A PostgreSQL setting that takes effect only when the cluster restarts.
    PostgresRestart,
}

/// A knob's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Values {
    /// Integers from `min` to `max`, every `step` or doubling (`log`).
    Range {
        /// The smallest safe value.
        min: i64,
        /// The largest safe value.
        max: i64,
        /// The step of a linear range.
        step: i64,
        /// Doublings from `min` instead of steps.
        log: bool,
    },
    /// Strings, rendered verbatim.
    Choices(&'static [&'static str]),
}

/// One tunable knob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Knob {
    /// The param name a search file gives it (`[a-z][a-z0-9_]*`).
    pub param: &'static str,
    /// The nginx directive or sysctl key.
    pub key: &'static str,
    /// nginx or the kernel.
    pub component: Component,
    /// The safe values.
    pub values: Values,
    /// The unit written after a range's number in the config (`MB`), or empty.
    pub unit: &'static str,
    /// Why it matters, in one line.
    pub rationale: &'static str,
    /// How the shipped deployment lets the agent change it.
    pub deploy: Deploy,
}

impl Knob {
    /// The knob's values as a `search.params` domain.
    pub fn domain(&self) -> Domain {
        match self.values {
            Values::Range {
                min,
                max,
                step,
                log,
            } => Domain::Range(IntRange {
                min,
                max,
                step: (!log && step != 1).then_some(step),
                scale: if log { Scale::Log } else { Scale::Linear },
            }),
            Values::Choices(choices) => Domain::Choices(Choices {
                choices: choices.iter().map(|c| (*c).to_owned()).collect(),
            }),
        }
    }

    /// The knob's values centred on `current` (what the machine has now), within the safe range
    /// and at most `cap` (a machine limit, such as a share of its memory), with the value to start
    /// from.
    ///
    /// A log range spans two doublings either way of `current` (so `current` is one of its
    /// levels), a linear one four steps either way; a current value outside the safe range (or
    /// none) gives the safe range from its nearer end (or whole). Choices are all the safe
    /// choices, starting at `current` when it is one.
    pub fn window(&self, current: Option<&ParamValue>, cap: Option<i64>) -> Window {
        match self.values {
            Values::Choices(choices) => {
                let start = current
                    .map(ToString::to_string)
                    .filter(|c| choices.contains(&c.as_str()))
                    .map(ParamValue::Str);
                Window {
                    domain: self.domain(),
                    start,
                }
            }
            Values::Range {
                min,
                max,
                step,
                log,
            } => {
                let max = cap.map_or(max, |cap| cap.clamp(min, max));
                let current = match current {
                    Some(ParamValue::Int(n)) => Some(*n),
                    _ => None,
                };
                let (lo, hi, start) = if log {
                    log_window(min, max, current)
                } else {
                    linear_window(min, max, step, current)
                };
                Window {
                    domain: Domain::Range(IntRange {
                        min: lo,
                        max: hi,
                        step: (!log && step != 1).then_some(step),
                        scale: if log { Scale::Log } else { Scale::Linear },
                    }),
                    start: start.map(ParamValue::Int),
                }
            }
        }
    }

    /// `current` as this knob's value, when it lies in the safe values.
    pub fn admits(&self, current: &ParamValue) -> bool {
        match (self.values, current) {
            (Values::Range { min, max, .. }, ParamValue::Int(n)) => (min..=max).contains(n),
            (Values::Choices(choices), value) => choices.contains(&value.to_string().as_str()),
            (Values::Range { .. }, ParamValue::Str(_)) => false,
        }
    }
}

/// A knob's values around what the machine has now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// The values to search.
    pub domain: Domain,
    /// Where to start: the current value when it is one of them.
    pub start: Option<ParamValue>,
}

/// `(min, max, start)` of a log window: see [`Knob::window`].
fn log_window(min: i64, max: i64, current: Option<i64>) -> (i64, i64, Option<i64>) {
    match current {
        Some(c) if (min..=max).contains(&c) => {
            let mut lo = c;
            for _ in 0..2 {
                if lo % 2 == 0 && lo / 2 >= min {
                    lo /= 2;
                }
            }
            let mut hi = c.saturating_mul(4).min(max);
            if hi == lo {
                // At the top already: reach down instead (the top stays a level).
                lo = (c / 4).max(min);
                hi = c;
            }
            (lo, hi, Some(c))
        }
        Some(c) if c < min => (min, min.saturating_mul(16).min(max), Some(min)),
        Some(_) => ((max / 16).max(min), max, Some(max)),
        None => (min, max, None),
    }
}

/// `(min, max, start)` of a linear window: see [`Knob::window`].
fn linear_window(min: i64, max: i64, step: i64, current: Option<i64>) -> (i64, i64, Option<i64>) {
    let step = step.max(1);
    match current {
        Some(c) if (min..=max).contains(&c) => {
            let below = ((c - min) / step).min(4);
            let above = ((max - c) / step).min(4);
            let (below, above) = if below + above == 0 {
                (0, 1)
            } else {
                (below, above)
            };
            (c - below * step, (c + above * step).min(max), Some(c))
        }
        Some(c) if c < min => (min, (min + 8 * step).min(max), Some(min)),
        Some(_) => {
            let lo = (max - 8 * step).max(min);
            let top = lo + (max - lo) / step * step;
            (lo, top, Some(top))
        }
        None => (min, max, None),
    }
}

const ON_OFF: &[&str] = &["on", "off"];

/// Every knob in the catalog.
pub const CATALOG: &[Knob] = &[
    Knob {
        param: "worker_processes",
        key: "worker_processes",
        component: Component::Nginx,
        values: Values::Range {
            min: 1,
            max: 64,
            step: 1,
            log: true,
        },
        unit: "",
        rationale: "one worker per core is the usual best; more only helps when workers block on disk",
        deploy: Deploy::NginxReload,
    },
    Knob {
        param: "worker_connections",
        key: "worker_connections",
        component: Component::Nginx,
        values: Values::Range {
            min: 512,
            max: 65536,
            step: 1,
            log: true,
        },
        unit: "",
        rationale: "caps concurrent connections per worker; too low refuses clients under load, too high only costs memory",
        deploy: Deploy::NginxReload,
    },
    Knob {
        param: "keepalive_timeout",
        key: "keepalive_timeout",
        component: Component::Nginx,
        values: Values::Range {
            min: 5,
            max: 120,
            step: 5,
            log: false,
        },
        unit: "",
        rationale: "seconds an idle client connection stays open: reuse saves handshakes, idle ones hold worker slots",
        deploy: Deploy::NginxReload,
    },
    Knob {
        param: "keepalive_requests",
        key: "keepalive_requests",
        component: Component::Nginx,
        values: Values::Range {
            min: 100,
            max: 10000,
            step: 1,
            log: true,
        },
        unit: "",
        rationale: "requests per kept-alive connection before nginx closes it; higher saves handshakes for busy clients",
        deploy: Deploy::NginxReload,
    },
    Knob {
        param: "gzip_comp_level",
        key: "gzip_comp_level",
        component: Component::Nginx,
        values: Values::Range {
            min: 1,
            max: 9,
            step: 1,
            log: false,
        },
        unit: "",
        rationale: "bytes on the wire against CPU per response: the best level depends on the clients' links",
        deploy: Deploy::NginxReload,
    },
    Knob {
        param: "open_file_cache_max",
        key: "open_file_cache",
        component: Component::Nginx,
        values: Values::Range {
            min: 1000,
            max: 200000,
            step: 1,
            log: true,
        },
        unit: "",
        rationale: "cached file descriptors and metadata for static files; saves open() and stat() per request",
        deploy: Deploy::NginxReload,
    },
    Knob {
        param: "sendfile",
        key: "sendfile",
        component: Component::Nginx,
        values: Values::Choices(ON_OFF),
        unit: "",
        rationale: "kernel-to-socket copies for static files; off can help only on some network filesystems",
        deploy: Deploy::NginxReload,
    },
    Knob {
        param: "tcp_nopush",
        key: "tcp_nopush",
        component: Component::Nginx,
        values: Values::Choices(ON_OFF),
        unit: "",
        rationale: "with sendfile, sends headers and the file start in full packets",
        deploy: Deploy::NginxReload,
    },
    Knob {
        param: "access_log_buffer",
        key: "access_log",
        component: Component::Nginx,
        values: Values::Choices(&["8k", "32k", "64k", "256k"]),
        unit: "",
        rationale: "buffered access logging writes once per buffer instead of once per request (as found it writes each line)",
        deploy: Deploy::NginxReload,
    },
    Knob {
        param: "somaxconn",
        key: "net.core.somaxconn",
        component: Component::Kernel,
        values: Values::Range {
            min: 128,
            max: 65535,
            step: 1,
            log: true,
        },
        unit: "",
        rationale: "the longest accept queue a listener may ask for; too short drops connections in bursts",
        deploy: Deploy::Unit("smart-somaxconn@.service"),
    },
    Knob {
        param: "tcp_fastopen",
        key: "net.ipv4.tcp_fastopen",
        component: Component::Kernel,
        values: Values::Choices(&["1", "3"]),
        unit: "",
        rationale: "3 also lets servers accept data in the SYN, saving a round trip for returning clients",
        deploy: Deploy::Unit("smart-tcp-fastopen@.service"),
    },
    Knob {
        param: "tcp_slow_start_after_idle",
        key: "net.ipv4.tcp_slow_start_after_idle",
        component: Component::Kernel,
        values: Values::Choices(&["1", "0"]),
        unit: "",
        rationale: "0 keeps the congestion window of idle keep-alive connections, so their next response is not throttled",
        deploy: Deploy::Unit("smart-tcp-slow-start@.service"),
    },
    Knob {
        param: "default_qdisc",
        key: "net.core.default_qdisc",
        component: Component::Kernel,
        values: Values::Choices(&["fq_codel", "fq", "pfifo_fast"]),
        unit: "",
        rationale: "fq paces flows (what BBR expects), fq_codel fights bufferbloat, pfifo_fast is the kernel's default; applies to interfaces set up afterwards",
        deploy: Deploy::Unit("smart-default-qdisc@.service"),
    },
    Knob {
        param: "shared_buffers",
        key: "shared_buffers",
        component: Component::Postgres,
        values: Values::Range {
            min: 32,
            max: 65536,
            step: 1,
            log: true,
        },
        unit: "MB",
        rationale: "PostgreSQL's own page cache: about a quarter of the memory is the usual start, more starves the OS cache; takes a restart",
        deploy: Deploy::PostgresRestart,
    },
    Knob {
        param: "work_mem",
        key: "work_mem",
        component: Component::Postgres,
        values: Values::Range {
            min: 1,
            max: 1024,
            step: 1,
            log: true,
        },
        unit: "MB",
        rationale: "memory per sort or hash before it spills to disk; every concurrent operation may take it, so too high risks running out of memory",
        deploy: Deploy::PostgresReload,
    },
    Knob {
        param: "random_page_cost",
        key: "random_page_cost",
        component: Component::Postgres,
        values: Values::Choices(&["1.1", "1.5", "2", "3", "4"]),
        unit: "",
        rationale: "the planner's price of a random page read against a sequential one: 4 suits spinning disks, about 1.1 SSDs and cached data",
        deploy: Deploy::PostgresReload,
    },
    Knob {
        param: "effective_io_concurrency",
        key: "effective_io_concurrency",
        component: Component::Postgres,
        values: Values::Range {
            min: 1,
            max: 512,
            step: 1,
            log: true,
        },
        unit: "",
        rationale: "how many reads a bitmap heap scan keeps in flight: SSDs and RAID serve many at once, a single disk one",
        deploy: Deploy::PostgresReload,
    },
    Knob {
        param: "synchronous_commit",
        key: "synchronous_commit",
        component: Component::Postgres,
        values: Values::Choices(&["on", "off"]),
        unit: "",
        rationale: "off answers a commit before its WAL is flushed: faster writes, but a crash loses the last few hundred milliseconds of commits (never consistency)",
        deploy: Deploy::PostgresReload,
    },
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use smart_core::template::is_param_name;

    use super::*;

    #[test]
    fn every_knob_has_a_searchable_domain_a_param_name_and_one_line() {
        let mut names = BTreeSet::new();
        for knob in CATALOG {
            assert!(is_param_name(knob.param), "{}", knob.param);
            assert!(names.insert(knob.param), "{} twice", knob.param);
            let levels = knob.domain().levels().unwrap();
            assert!(levels.len() >= 2, "{}: {levels:?}", knob.param);
            assert!(!knob.rationale.is_empty() && !knob.rationale.contains('\n'));
        }
    }

    /// The shipped unit and polkit rule of every kernel knob admit exactly the catalog's values:
    /// the range's bounds, or each choice (the values themselves are exercised against the real
    /// unit checks and rule in smart-cli's deploy tests).
    #[test]
    fn every_kernel_knob_has_a_shipped_unit_and_rule_that_admit_its_values() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let rules = std::fs::read_to_string(root.join("deploy/polkit/50-smart.rules")).unwrap();
        let kernel: Vec<&Knob> = CATALOG
            .iter()
            .filter(|k| k.component == Component::Kernel)
            .collect();
        assert_eq!(kernel.len(), 4);
        for knob in kernel {
            let Deploy::Unit(unit) = knob.deploy else {
                panic!("{}: no unit", knob.param)
            };
            let text = std::fs::read_to_string(root.join("deploy/systemd").join(unit))
                .unwrap_or_else(|e| panic!("{unit}: {e}"));
            assert!(
                text.contains(&format!("ExecStart=/usr/sbin/sysctl -w {}=%i", knob.key)),
                "{unit}"
            );
            let prefix = unit.trim_end_matches(".service");
            match knob.values {
                Values::Range { min, max, .. } => {
                    assert!(rules.contains(&format!("value >= {min} && value <= {max}")));
                    assert!(
                        text.contains(&format!("-ge {min} -a %i -le {max}")),
                        "{unit}"
                    );
                }
                Values::Choices(choices) => {
                    let listed: Vec<String> = choices.iter().map(|c| format!("\"{c}\"")).collect();
                    assert!(
                        rules.contains(&format!("\"{prefix}\": [{}]", listed.join(", "))),
                        "50-smart.rules should list {prefix}: {listed:?}"
                    );
                    let check: Vec<String> =
                        choices.iter().map(|c| format!("X%i = X{c}")).collect();
                    assert!(
                        text.contains(&format!("ExecStartPre=/usr/bin/expr {}", check.join(" | "))),
                        "{unit} should check {check:?}"
                    );
                }
            }
        }
    }

    fn check(
        knob: &str,
        current: Option<ParamValue>,
        cap: Option<i64>,
        expected: (&str, Option<ParamValue>),
    ) {
        let knob = CATALOG.iter().find(|k| k.param == knob).unwrap();
        let window = knob.window(current.as_ref(), cap);
        let levels: Vec<String> = window
            .domain
            .levels()
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            (levels.join(" ").as_str(), window.start.clone()),
            expected,
            "{} at {current:?}",
            knob.param
        );
        if let Some(start) = &window.start {
            assert!(knob.admits(start));
            assert!(window.domain.levels().unwrap().contains(start));
        }
    }

    #[test]
    fn windows_centre_on_the_current_value_within_the_safe_range() {
        use ParamValue::{Int, Str};
        // Log ranges: two doublings either way, the current value one of the levels.
        check(
            "somaxconn",
            Some(Int(4096)),
            None,
            ("1024 2048 4096 8192 16384", Some(Int(4096))),
        );
        check(
            "worker_connections",
            Some(Int(768)),
            None,
            ("768 1536 3072", Some(Int(768))),
        );
        check(
            "worker_connections",
            Some(Int(2048)),
            None,
            ("512 1024 2048 4096 8192", Some(Int(2048))),
        );
        check(
            "somaxconn",
            Some(Int(65535)),
            None,
            ("16383 32766 65532 65535", Some(Int(65535))),
        );
        // Below the safe range: from its bottom; unknown: the whole range.
        check(
            "worker_connections",
            Some(Int(64)),
            None,
            ("512 1024 2048 4096 8192", Some(Int(512))),
        );
        check(
            "effective_io_concurrency",
            None,
            None,
            ("1 2 4 8 16 32 64 128 256 512", None),
        );
        // A machine cap (a share of memory) bounds the top.
        check(
            "shared_buffers",
            Some(Int(128)),
            Some(400),
            ("32 64 128 256 400", Some(Int(128))),
        );
        // Linear: four steps either way, clipped.
        check(
            "gzip_comp_level",
            Some(Int(1)),
            None,
            ("1 2 3 4 5", Some(Int(1))),
        );
        check(
            "gzip_comp_level",
            Some(Int(6)),
            None,
            ("2 3 4 5 6 7 8 9", Some(Int(6))),
        );
        check(
            "keepalive_timeout",
            Some(Int(65)),
            None,
            ("45 50 55 60 65 70 75 80 85", Some(Int(65))),
        );
        check(
            "keepalive_timeout",
            Some(Int(300)),
            None,
            ("80 85 90 95 100 105 110 115 120", Some(Int(120))),
        );
        // Choices: all of them, from the current one when it is one.
        check(
            "tcp_fastopen",
            Some(Str("3".into())),
            None,
            ("1 3", Some(Str("3".into()))),
        );
        check("tcp_fastopen", Some(Str("0".into())), None, ("1 3", None));
        check(
            "synchronous_commit",
            Some(Str("on".into())),
            None,
            ("on off", Some(Str("on".into()))),
        );
    }
}
