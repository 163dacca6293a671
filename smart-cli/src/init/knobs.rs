//! `smart init --detect DIR`: turns what the detector finds on this machine (nginx's server-wide
//! directives, sysctls, CPUs, memory, a PostgreSQL cluster's config files) and the catalog of
//! knobs (`smart_search::catalog`) into one experiment or search file per knob present, each
//! centred on the value the machine has now. Knobs it cannot write come back with the reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use smart_apply::detect::{Context, Machine, NginxSetup, PgConfig, Setting, postgres, system};
use smart_core::experiment::ParamValue;
use smart_search::catalog::{CATALOG, Component, Deploy, Knob, Values};

/// What `--detect` found on the machine.
pub(crate) struct Found<'a> {
    /// The local nginx, when detected (the CLI reports why not).
    pub nginx: Option<&'a NginxSetup>,
    /// CPUs and memory.
    pub machine: Machine,
    /// Where sysctls are read (`/proc/sys`).
    pub proc_sys: &'a Path,
    /// The PostgreSQL cluster's config, why it could not be read, or `None` when there is none.
    pub postgres: Option<Result<PgConfig, String>>,
}

/// One file to write, or why a knob gets none.
pub(crate) enum Plan {
    /// `name.json` with this content, and a one-line summary.
    File {
        /// The file name (`tune-nginx-worker-connections.json`).
        file: String,
        /// The experiment.
        json: Value,
        /// What it tries, for the report.
        summary: String,
    },
    /// The knob is on this machine but no file is written: the key and why.
    Skip {
        /// The directive, sysctl or setting.
        key: String,
        /// Why, and what would make it work.
        reason: String,
    },
}

/// nginx's compiled-in defaults of the directives the catalog tunes when they are not written.
fn nginx_default(directive: &str) -> Option<ParamValue> {
    Some(match directive {
        "keepalive_timeout" => ParamValue::Int(75),
        "keepalive_requests" => ParamValue::Int(1000),
        "gzip_comp_level" => ParamValue::Int(1),
        "sendfile" | "tcp_nopush" => ParamValue::Str("off".to_owned()),
        _ => return None,
    })
}

/// PostgreSQL's defaults of the settings the catalog tunes.
fn postgres_default(setting: &str) -> &'static str {
    match setting {
        "shared_buffers" => "128MB",
        "work_mem" => "4MB",
        "random_page_cost" => "4",
        "effective_io_concurrency" => "1",
        _ => "on",
    }
}

/// Every knob of the catalog present on this machine, as a file or a reason.
pub(crate) fn plan(found: &Found<'_>) -> Vec<Plan> {
    let mut out = Vec::new();
    for knob in CATALOG {
        let planned = match knob.component {
            Component::Nginx => match found.nginx {
                Some(setup) => nginx(knob, setup, &found.machine),
                None => continue,
            },
            Component::Kernel => {
                let Some(current) = system::read_sysctl(found.proc_sys, knob.key) else {
                    continue;
                };
                kernel(knob, &current, found.nginx)
            }
            Component::Postgres => match &found.postgres {
                Some(Ok(config)) => pg(knob, config, &found.machine),
                Some(Err(e)) => Err(e.clone()),
                None => continue,
            },
        };
        out.push(planned.unwrap_or_else(|reason| Plan::Skip {
            key: knob.key.to_owned(),
            reason,
        }));
    }
    out
}

/// The experiment's name: `tune-COMPONENT-PARAM` with dashes.
fn name(knob: &Knob) -> String {
    let component = match knob.component {
        Component::Nginx => "nginx",
        Component::Kernel => "sysctl",
        Component::Postgres => "postgres",
    };
    format!("tune-{component}-{}", knob.param.replace('_', "-"))
}

/// The file written for `knob`: `experiment` completed by its values part (from [`values`]),
/// with `what` as the report's summary.
fn file_plan(
    knob: &Knob,
    mut experiment: Value,
    values: BTreeMap<&'static str, Value>,
    what: String,
) -> Plan {
    for (k, v) in values {
        experiment[k] = v;
    }
    Plan::File {
        file: format!("{}.json", name(knob)),
        json: experiment,
        summary: what,
    }
}

/// The values part of an experiment: a `search` for a range, `variants` for choices (every safe
/// choice but the current one), and the description's words for it.
fn values(
    knob: &Knob,
    current: Option<&ParamValue>,
    cap: Option<i64>,
) -> (BTreeMap<&'static str, Value>, String) {
    let window = knob.window(current, cap);
    let now = current.map_or_else(|| "not set".to_owned(), |c| format!("{c}{}", knob.unit));
    let mut out = BTreeMap::new();
    match knob.values {
        Values::Range { .. } => {
            let mut search = json!({
                "params": {knob.param: window.domain},
                "budget": {"max_candidates": 12},
                "objective": "p50",
            });
            if let Some(start) = &window.start {
                search["start"] = json!({knob.param: start});
            }
            let levels = window.domain.levels().unwrap_or_default();
            let span = match (levels.first(), levels.last()) {
                (Some(lo), Some(hi)) => format!("{lo}{u} to {hi}{u}", u = knob.unit),
                _ => String::new(),
            };
            out.insert("search", search);
            (
                out,
                format!("searches {} from {span} (now {now})", knob.key),
            )
        }
        Values::Choices(choices) => {
            let current = window.start.as_ref().map(ToString::to_string);
            let variants: Vec<Value> = choices
                .iter()
                .filter(|c| current.as_deref() != Some(**c))
                .map(|c| {
                    json!({
                        "name": format!("{}-{}", knob.param.replace('_', "-"), c.replace(['_', '.'], "-")),
                        "params": {knob.param: c}
                    })
                })
                .collect();
            let tried: Vec<&str> = choices
                .iter()
                .copied()
                .filter(|c| current.as_deref() != Some(*c))
                .collect();
            out.insert("variants", Value::Array(variants));
            (
                out,
                format!("tries {} = {} (now {now})", knob.key, tried.join(", ")),
            )
        }
    }
}

/// The description: what is tried, the rationale and the safe range.
fn description(knob: &Knob, what: &str, how: &str) -> String {
    let safe = match knob.values {
        Values::Range { min, max, .. } => format!("{min}{u} to {max}{u}", u = knob.unit),
        Values::Choices(choices) => choices.join(", "),
    };
    let mut what = what.to_owned();
    if let Some(first) = what.get(..1) {
        what.replace_range(..1, &first.to_uppercase());
    }
    format!(
        "{what}: {}. Safe values: {safe}. {how} Written by `smart init --detect` from what this machine has now.",
        knob.rationale
    )
}

/// An nginx directive's file: an `edit` of the line that holds it, or a file of its own in the
/// `http {}` drop-in directory when it is not written (at `http` level only).
fn nginx(knob: &Knob, setup: &NginxSetup, machine: &Machine) -> Result<Plan, String> {
    let dump = &setup.dump;
    let context = match knob.key {
        "worker_processes" => Context::Main,
        "worker_connections" => Context::Events,
        _ => Context::Http,
    };
    let setting = dump.setting(context, knob.key);
    if knob.key == "gzip_comp_level"
        && dump
            .setting(Context::Http, "gzip")
            .is_none_or(|g| g.args.first().is_none_or(|a| a != "on"))
    {
        return Err(format!(
            "gzip is not on in http {{}} of {}, so the level changes nothing: add `gzip on;` and \
             run smart init --detect again",
            dump.main_config.display()
        ));
    }
    let p = knob.param;
    // (current, the directive's line with the placeholder)
    let (current, line): (Option<ParamValue>, String) = match (knob.key, setting) {
        ("access_log", None) => {
            return Err(format!(
                "no access_log in http {{}} of {} to buffer",
                dump.main_config.display()
            ));
        }
        ("access_log", Some(s)) if s.args.first().is_none_or(|a| a == "off") => {
            return Err("access logging is off in http {}: nothing to buffer".to_owned());
        }
        ("access_log", Some(s)) => {
            let path = &s.args[0];
            let format = s.args.get(1).filter(|a| !a.contains('='));
            let current = s
                .args
                .iter()
                .find_map(|a| a.strip_prefix("buffer="))
                .map(|b| ParamValue::Str(b.to_owned()));
            let rest: Vec<&str> = s.args[1 + usize::from(format.is_some())..]
                .iter()
                .map(String::as_str)
                .filter(|a| !a.starts_with("buffer="))
                .collect();
            let mut words = vec![
                path.clone(),
                format.cloned().unwrap_or_else(|| "combined".to_owned()),
                format!("buffer={{{{ {p} }}}}"),
            ];
            words.extend(rest.iter().map(|w| (*w).to_owned()));
            (current, format!("access_log {};", words.join(" ")))
        }
        ("open_file_cache", s) => {
            let current = s.and_then(|s| {
                s.args.iter().find_map(|a| {
                    a.strip_prefix("max=")
                        .and_then(|n| n.parse().ok())
                        .map(ParamValue::Int)
                })
            });
            let rest: Vec<String> = s
                .map(|s| {
                    s.args
                        .iter()
                        .filter(|a| *a != "off" && !a.starts_with("max="))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            let rest = if rest.is_empty() {
                vec!["inactive=20s".to_owned()]
            } else {
                rest
            };
            (
                current,
                format!("open_file_cache max={{{{ {p} }}}} {};", rest.join(" ")),
            )
        }
        (key, Some(s)) => {
            let arg = s.args.first().map(String::as_str).unwrap_or("");
            let current = match knob.values {
                Values::Choices(_) => Some(ParamValue::Str(arg.to_owned())),
                Values::Range { .. } if key == "worker_processes" && arg == "auto" => {
                    Some(ParamValue::Int(i64::from(machine.cpus)))
                }
                Values::Range { .. } => {
                    let number = arg.strip_suffix('s').unwrap_or(arg);
                    match number.parse() {
                        Ok(n) if s.args.len() == 1 => Some(ParamValue::Int(n)),
                        _ => {
                            return Err(format!(
                                "{}:{}: `{key} {};` is not one plain number of seconds or a count",
                                s.file.display(),
                                s.line,
                                s.args.join(" ")
                            ));
                        }
                    }
                }
            };
            (current, format!("{key} {{{{ {p} }}}};"))
        }
        (key, None) => (nginx_default(key), format!("{key} {{{{ {p} }}}};")),
    };
    let (file, how) = match setting {
        Some(s) => edit_file(knob, s, &line)?,
        None => match (context, dump.drop_in(&format!("smart-{}.conf", knob.param))) {
            (Context::Http, Some((path, _))) => (
                json!({"path": path, "template": format!("# Owned by smart (experiment {}).\n{line}\n", name(knob))}),
                format!(
                    "{} is not written in nginx's config, so nginx's default holds; smart owns {} (in the directory http {{}} includes) while it runs.",
                    knob.key,
                    path.display()
                ),
            ),
            (Context::Http, None) => {
                return Err(format!(
                    "{} is not set and http {{}} in {} includes no directory of *.conf files to add it in: add `include /etc/nginx/conf.d/*.conf;` inside http {{}}",
                    knob.key,
                    dump.main_config.display()
                ));
            }
            _ => {
                return Err(format!(
                    "{} is not written in {} (nginx's default holds): add it there, on a line of its own, and run smart init --detect again",
                    knob.key,
                    dump.main_config.display()
                ));
            }
        },
    };
    let cap = None;
    let (values, what) = values(knob, current.as_ref(), cap);
    let url = dump.site.listen.url();
    let experiment = json!({
        "format_version": 1,
        "name": name(knob),
        "description": description(knob, &what, &how),
        "target": {"urls": [url]},
        "apply": {
            "files": [file],
            "validate": setup.test,
            "reload": setup.reload,
            "health": {"url": url, "timeout_s": 10},
        },
        "schedule": {"max_cycles": 16, "max_duration_s": 7200},
    });
    Ok(file_plan(knob, experiment, values, what))
}

/// The `files[]` entry that edits the line of `setting` into `line` (indented as found).
fn edit_file(knob: &Knob, setting: &Setting, line: &str) -> Result<(Value, String), String> {
    let Some(edit) = &setting.edit else {
        return Err(format!(
            "{}:{}: {} shares its line with another directive, or the file has another line like \
             it, so one line cannot be edited: put it on a line of its own",
            setting.file.display(),
            setting.line,
            knob.key
        ));
    };
    Ok((
        json!({
            "path": setting.file,
            "edit": {"pattern": edit.pattern, "replace": format!("{}{line}", edit.indent)}
        }),
        format!(
            "Edits line {} of {} (the rest of the file stays as it is).",
            setting.line,
            setting.file.display()
        ),
    ))
}

/// A sysctl's file: set through the shipped deploy's unit, measured on the nginx site.
fn kernel(knob: &Knob, current: &str, nginx: Option<&NginxSetup>) -> Result<Plan, String> {
    let Deploy::Unit(unit) = knob.deploy else {
        return Err("no unit of the shipped deploy sets it".to_owned());
    };
    let value = match knob.values {
        Values::Range { .. } => current
            .parse()
            .map(ParamValue::Int)
            .unwrap_or_else(|_| ParamValue::Str(current.to_owned())),
        Values::Choices(_) => ParamValue::Str(current.to_owned()),
    };
    if !knob.admits(&value) {
        let admitted = match knob.values {
            Values::Range { min, max, .. } => format!("{min} to {max}"),
            Values::Choices(c) => c.join(", "),
        };
        return Err(format!(
            "{} is {current} here, which the shipped deploy's {unit} and its polkit rule do not \
             admit (they take {admitted}), so smart could not put it back after a run: add \
             {current} to both (deploy/systemd/{unit}, deploy/polkit/50-smart.rules) or run the \
             experiment as root with `\"set\": [\"sysctl\", \"-w\", \"{}={{{{ {} }}}}\"]`",
            knob.key, knob.key, knob.param
        ));
    }
    let Some(setup) = nginx else {
        return Err("no nginx site was detected to measure it with (see above)".to_owned());
    };
    let (values, what) = values(knob, Some(&value), None);
    let url = setup.dump.site.listen.url();
    let set = unit.replace("@.", &format!("@{{{{ {} }}}}.", knob.param));
    let how = format!(
        "Reads it with sysctl (no privilege needed) and sets it by starting {unit} with the value \
         as instance, which the shipped polkit rule lets the smart user start for these values \
         only; smart puts the value read back after the run."
    );
    let experiment = json!({
        "format_version": 1,
        "name": name(knob),
        "description": description(knob, &what, &how),
        "target": {"urls": [url]},
        "apply": {
            "command": {"read": ["sysctl", "-n", knob.key], "set": ["systemctl", "start", set]},
            "health": {"url": url, "timeout_s": 10},
        },
        "schedule": {"max_cycles": 16, "max_duration_s": 7200},
    });
    Ok(file_plan(knob, experiment, values, what))
}

/// A PostgreSQL setting's file: smart owns `include_dir/smart-PARAM.conf`, made live by a reload
/// (or a restart), measured by pgbench through smart-pgbench, as docs/database.md describes.
fn pg(knob: &Knob, config: &PgConfig, machine: &Machine) -> Result<Plan, String> {
    let Some(dir) = &config.include_dir else {
        return Err(format!(
            "{} has no include_dir for smart to own a file in: add `include_dir = 'conf.d'` at its end",
            config.file.display()
        ));
    };
    let written = config.settings.get(knob.key).map(String::as_str);
    let raw = written.unwrap_or(postgres_default(knob.key));
    let current = match knob.key {
        "shared_buffers" => postgres::memory_mb(raw, 8).map(ParamValue::Int),
        "work_mem" => postgres::memory_mb(raw, 1).map(ParamValue::Int),
        "effective_io_concurrency" => raw.parse().ok().map(ParamValue::Int),
        "random_page_cost" => {
            let cost: Option<f64> = raw.parse().ok();
            match knob.values {
                Values::Choices(choices) => choices
                    .iter()
                    .find(|c| c.parse::<f64>().ok() == cost)
                    .map(|c| ParamValue::Str((*c).to_owned())),
                Values::Range { .. } => None,
            }
        }
        _ => Some(ParamValue::Str(raw.to_owned())),
    };
    let memory = machine.memory_mb();
    // shared_buffers up to 40 % of the memory, work_mem up to 1/64 of it (it is taken per
    // operation, by every connection).
    let cap = match knob.key {
        "shared_buffers" => memory.map(|m| m * 2 / 5),
        "work_mem" => memory.map(|m| m / 64),
        _ => None,
    };
    let restart = knob.deploy == Deploy::PostgresRestart;
    let unit = config.unit();
    if restart && unit.is_none() {
        return Err(format!(
            "{} takes a restart and {} does not say which cluster it is (Debian's \
             /etc/postgresql/VERSION/CLUSTER/ or cluster_name = 'VERSION/CLUSTER')",
            knob.key,
            config.file.display()
        ));
    }
    let port: Vec<String> = match config.settings.get("port") {
        Some(port) if port != "5432" => vec!["-p".to_owned(), port.clone()],
        _ => Vec::new(),
    };
    let file_name = format!("smart-{}.conf", knob.param.replace('_', "-"));
    let value = if knob.unit.is_empty() {
        format!("{{{{ {} }}}}", knob.param)
    } else {
        format!("'{{{{ {} }}}}{}'", knob.param, knob.unit)
    };
    let template = format!(
        "# Owned by smart (experiment {}); restored byte for byte after each run.\n{} = {value}\n",
        name(knob),
        knob.key
    );
    let psql = |sql: &str| -> Value {
        let mut argv: Vec<String> = [
            "runuser",
            "-u",
            "postgres",
            "--",
            "psql",
            "-X",
            "-A",
            "-t",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        argv.extend(port.iter().cloned());
        argv.extend(["-c".to_owned(), sql.to_owned()]);
        json!(argv)
    };
    let validate = if restart {
        psql(
            "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_file_settings WHERE error IS NOT NULL AND error <> 'setting could not be applied') THEN RAISE EXCEPTION 'a config file has an error: see pg_file_settings'; END IF; END $$",
        )
    } else {
        psql(&format!(
            "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_file_settings WHERE error IS NOT NULL) THEN RAISE EXCEPTION 'a config file has an error: see pg_file_settings'; END IF; IF EXISTS (SELECT 1 FROM pg_file_settings WHERE sourcefile LIKE '%/{file_name}' AND NOT applied AND error IS NULL) THEN RAISE EXCEPTION 'a later file (postgresql.auto.conf, from ALTER SYSTEM) overrides {file_name}'; END IF; END $$"
        ))
    };
    let reload = match (&unit, restart) {
        (Some(unit), true) => json!(["systemctl", "restart", unit]),
        _ => psql("SELECT pg_reload_conf(), pg_sleep(0.5)"),
    };
    let mut bench: Vec<String> = [
        "runuser",
        "-u",
        "postgres",
        "--",
        "/usr/local/bin/smart-pgbench",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    bench.extend(port.iter().cloned());
    let workload = if restart { "-S" } else { "-N" };
    bench.extend(["-c", "8", "-j", "2", workload, "bench"].map(str::to_owned));
    let (values, what) = values(knob, current.as_ref(), cap);
    let path = dir.join(&file_name);
    let how = format!(
        "smart owns {} (read after {}), makes it live with {}, and measures each block with \
         pgbench through smart-pgbench on the database `bench` (see docs/database.md: install \
         smart-pgbench and create and fill `bench` first).{}",
        path.display(),
        config.file.display(),
        if restart {
            "a restart of the cluster (a few seconds without service: run it in a maintenance window)"
        } else {
            "SELECT pg_reload_conf()"
        },
        if written.is_none() {
            " Not set in the config files: PostgreSQL's default holds."
        } else {
            ""
        }
    );
    let schedule = if restart {
        json!({"cooldown_s": 10, "block_s": 20, "max_cycles": 16, "soak_s": 300, "max_duration_s": 21600})
    } else {
        json!({"cooldown_s": 2, "block_s": 10, "max_cycles": 16, "soak_s": 120, "max_duration_s": 10800})
    };
    let experiment = json!({
        "format_version": 1,
        "name": name(knob),
        "description": description(knob, &what, &how),
        "measure": {"source": "command", "command": {"argv": bench, "grace_s": 30}},
        "apply": {
            "files": [{"path": path, "template": template}],
            "validate": validate,
            "reload": reload,
            "command_timeout_s": if restart { 120 } else { 30 },
        },
        "schedule": schedule,
    });
    Ok(file_plan(knob, experiment, values, what))
}

/// Where `--detect` looks for PostgreSQL: the file named, else Debian's newest cluster.
pub(crate) fn postgres_config(named: Option<&Path>) -> Option<Result<PgConfig, String>> {
    let file: PathBuf = match named {
        Some(file) => file.to_owned(),
        None => postgres::find_conf(Path::new(postgres::DEBIAN_ROOT))?,
    };
    Some(postgres::read_conf(&file).map_err(|e| e.to_string()))
}

#[cfg(test)]
mod tests {
    use smart_apply::detect::nginx::parse_dump;

    use super::*;

    /// `nginx -T` of Debian bookworm's stock nginx package (the detector's captured dump).
    const DEBIAN: &str =
        include_str!("../../../smart-apply/src/detect/testdata/debian-default.txt");

    /// The plans for `dump`, these sysctls and this postgresql.conf on a 4-CPU, 8 GiB machine:
    /// files by name and reasons by key.
    fn plans(
        dump: &str,
        sysctls: &[(&str, &str)],
        pg: &str,
    ) -> (BTreeMap<String, Value>, BTreeMap<String, String>) {
        let proc_sys = tempfile::tempdir().unwrap();
        for (key, value) in sysctls {
            let path = system::sysctl_path(proc_sys.path(), key).unwrap();
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, format!("{value}\n")).unwrap();
        }
        let setup = NginxSetup::new(parse_dump(dump).unwrap(), "nginx", None);
        let found = Found {
            nginx: Some(&setup),
            machine: Machine {
                cpus: 4,
                memory_bytes: Some(8 << 30),
            },
            proc_sys: proc_sys.path(),
            postgres: Some(Ok(postgres::parse_conf(
                Path::new("/etc/postgresql/15/main/postgresql.conf"),
                pg,
            ))),
        };
        let (mut files, mut skips) = (BTreeMap::new(), BTreeMap::new());
        for plan in plan(&found) {
            match plan {
                Plan::File { file, json, .. } => {
                    files.insert(file, json);
                }
                Plan::Skip { key, reason } => {
                    skips.insert(key, reason);
                }
            }
        }
        (files, skips)
    }

    #[test]
    fn plans_every_knob_of_a_stock_debian_machine_centred_on_what_it_has() {
        let (files, skips) = plans(
            DEBIAN,
            &[
                ("net.core.somaxconn", "4096"),
                ("net.ipv4.tcp_fastopen", "0"),
                ("net.core.default_qdisc", "fq_codel"),
            ],
            "shared_buffers = 128MB\nwork_mem = '8MB'\ninclude_dir = 'conf.d'\n",
        );
        let file = |name: &str| {
            files
                .get(name)
                .unwrap_or_else(|| panic!("{name}: {skips:?}"))
        };
        // `auto` is one per CPU.
        let workers = file("tune-nginx-worker-processes.json");
        assert_eq!(workers["search"]["start"]["worker_processes"], 4);
        assert_eq!(workers["search"]["params"]["worker_processes"]["max"], 16);
        assert_eq!(
            workers["apply"]["files"][0]["edit"]["replace"],
            "worker_processes {{ worker_processes }};"
        );
        assert_eq!(workers["apply"]["validate"], json!(["nginx", "-t"]));
        // Written in http {}: its line is edited, keeping the tab; the default format is named
        // since `buffer=` must follow one.
        assert_eq!(
            file("tune-nginx-access-log-buffer.json")["apply"]["files"][0]["edit"]["replace"],
            "\taccess_log /var/log/nginx/access.log combined buffer={{ access_log_buffer }};"
        );
        // Not written: nginx's default, in a file of its own where http {} includes *.conf.
        let gzip = file("tune-nginx-gzip-comp-level.json");
        assert_eq!(
            gzip["apply"]["files"][0]["path"],
            "/etc/nginx/conf.d/smart-gzip_comp_level.conf"
        );
        assert_eq!(gzip["search"]["start"]["gzip_comp_level"], 1);
        let description = gzip["description"].as_str().unwrap();
        assert!(
            description.contains("bytes on the wire against CPU"),
            "{description}"
        );
        assert!(description.contains("Safe values: 1 to 9"), "{description}");
        // Kernel: set through the shipped units; a value the unit would refuse to put back is
        // reported instead; a sysctl this kernel lacks is left out.
        assert_eq!(
            file("tune-sysctl-somaxconn.json")["apply"]["command"]["set"],
            json!([
                "systemctl",
                "start",
                "smart-somaxconn@{{ somaxconn }}.service"
            ])
        );
        let fastopen = &skips["net.ipv4.tcp_fastopen"];
        assert!(
            fastopen.contains("is 0 here") && fastopen.contains("smart-tcp-fastopen@.service"),
            "{fastopen}"
        );
        assert!(!skips.contains_key("net.ipv4.tcp_slow_start_after_idle"));
        assert!(!files.contains_key("tune-sysctl-tcp-slow-start-after-idle.json"));
        let qdisc: Vec<&Value> = file("tune-sysctl-default-qdisc.json")["variants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| &v["params"]["default_qdisc"])
            .collect();
        assert_eq!(qdisc, [&json!("fq"), &json!("pfifo_fast")]);
        // PostgreSQL: centred on the config's values, capped by the memory (8 GiB).
        let work_mem = file("tune-postgres-work-mem.json");
        assert_eq!(work_mem["search"]["start"]["work_mem"], 8);
        assert_eq!(work_mem["search"]["params"]["work_mem"]["max"], 32);
        assert_eq!(
            work_mem["apply"]["files"][0]["path"],
            "/etc/postgresql/15/main/conf.d/smart-work-mem.conf"
        );
        assert!(
            work_mem["apply"]["files"][0]["template"]
                .as_str()
                .unwrap()
                .ends_with("work_mem = '{{ work_mem }}MB'\n")
        );
        assert_eq!(
            file("tune-postgres-shared-buffers.json")["apply"]["reload"],
            json!(["systemctl", "restart", "postgresql@15-main"])
        );
        assert_eq!(
            file("tune-postgres-random-page-cost.json")["variants"]
                .as_array()
                .unwrap()
                .len(),
            4
        );
        assert_eq!(files.len(), 9 + 2 + 5, "{:?}", files.keys());
    }

    #[test]
    fn says_why_when_a_knob_cannot_be_written() {
        let dump = "# configuration file /n/nginx.conf:\nevents {\n    worker_connections 1024;\n}\nhttp {\n  sendfile on; tcp_nopush on;\n  gzip off;\n  server { listen 8080; }\n}\n";
        let (files, skips) = plans(dump, &[], "shared_buffers = 128MB\n");
        assert!(files.contains_key("tune-nginx-worker-connections.json"));
        for (key, why) in [
            ("worker_processes", "is not written in /n/nginx.conf"),
            ("gzip_comp_level", "gzip is not on"),
            ("sendfile", "shares its line"),
            ("keepalive_timeout", "includes no directory of *.conf files"),
            ("access_log", "no access_log in http {}"),
            ("work_mem", "has no include_dir"),
        ] {
            assert!(
                skips.get(key).is_some_and(|r| r.contains(why)),
                "{key}: {skips:?}"
            );
        }
    }
}
