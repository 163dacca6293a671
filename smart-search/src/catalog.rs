//! The built-in catalog of knobs a search may tune: each with a safe range and a one-line
//! rationale, for `smart init --detect` to turn the knobs present on a machine into search
//! files. Data only: detecting what a machine has is the detector's job (smart-apply's
//! `detect`), and writing files is the CLI's.

use smart_core::experiment::{Choices, Domain, IntRange, Scale};

/// What a knob belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// An nginx directive, changed through the config and `nginx -s reload`.
    Nginx,
    /// A Linux sysctl.
    Kernel,
}

/// How the shipped deployment lets the agent change a knob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deploy {
    /// An nginx directive: the agent edits its config and reloads nginx, which the shipped polkit
    /// rule allows.
    NginxReload,
    /// A sysctl the shipped deployment sets through this templated unit (its polkit rule and the
    /// unit check the same bounds as the catalog's range).
    Unit(&'static str),
    /// A sysctl the shipped deployment cannot change yet: what it would need.
    Needs(&'static str),
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
        rationale: "cached file descriptors and metadata for static files; saves open() and stat() per request",
        deploy: Deploy::NginxReload,
    },
    Knob {
        param: "sendfile",
        key: "sendfile",
        component: Component::Nginx,
        values: Values::Choices(ON_OFF),
        rationale: "kernel-to-socket copies for static files; off can help only on some network filesystems",
        deploy: Deploy::NginxReload,
    },
    Knob {
        param: "tcp_nopush",
        key: "tcp_nopush",
        component: Component::Nginx,
        values: Values::Choices(ON_OFF),
        rationale: "with sendfile, sends headers and the file start in full packets",
        deploy: Deploy::NginxReload,
    },
    Knob {
        param: "access_log_buffer",
        key: "access_log",
        component: Component::Nginx,
        values: Values::Choices(&["off", "8k", "32k", "64k", "256k"]),
        rationale: "buffered access logging writes once per buffer instead of once per request ('off' writes unbuffered)",
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
        rationale: "the longest accept queue a listener may ask for; too short drops connections in bursts",
        deploy: Deploy::Unit("smart-somaxconn@.service"),
    },
    Knob {
        param: "tcp_fastopen",
        key: "net.ipv4.tcp_fastopen",
        component: Component::Kernel,
        values: Values::Choices(&["1", "3"]),
        rationale: "3 also lets servers accept data in the SYN, saving a round trip for returning clients",
        deploy: Deploy::Needs(
            "a unit smart-tcp-fastopen@.service and a polkit rule admitting 1 and 3, like smart-somaxconn@",
        ),
    },
    Knob {
        param: "tcp_slow_start_after_idle",
        key: "net.ipv4.tcp_slow_start_after_idle",
        component: Component::Kernel,
        values: Values::Choices(&["1", "0"]),
        rationale: "0 keeps the congestion window of idle keep-alive connections, so their next response is not throttled",
        deploy: Deploy::Needs(
            "a unit smart-tcp-slow-start@.service and a polkit rule admitting 0 and 1, like smart-somaxconn@",
        ),
    },
    Knob {
        param: "default_qdisc",
        key: "net.core.default_qdisc",
        component: Component::Kernel,
        values: Values::Choices(&["fq_codel", "fq"]),
        rationale: "fq paces flows (what BBR expects), fq_codel fights bufferbloat; applies to interfaces set up afterwards",
        deploy: Deploy::Needs(
            "a unit smart-default-qdisc@.service and a polkit rule admitting fq and fq_codel, like smart-somaxconn@",
        ),
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

    #[test]
    fn the_somaxconn_range_is_what_the_shipped_unit_and_polkit_rule_admit() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let rules = std::fs::read_to_string(root.join("deploy/polkit/50-smart.rules")).unwrap();
        let unit =
            std::fs::read_to_string(root.join("deploy/systemd/smart-somaxconn@.service")).unwrap();
        let knob = CATALOG.iter().find(|k| k.param == "somaxconn").unwrap();
        let Values::Range { min, max, .. } = knob.values else {
            panic!("somaxconn is a range")
        };
        assert!(rules.contains(&format!("value >= {min} && value <= {max}")));
        assert!(unit.contains(&format!("-ge {min} -a %i -le {max}")));
        assert_eq!(knob.deploy, Deploy::Unit("smart-somaxconn@.service"));
    }
}
