//! `smart init`: writes a commented `smart.toml` and an example experiment to start from, fitted
//! to the local nginx when one is found (`smart_apply::detect`); with `--detect DIR`, one
//! experiment or search file per knob of the catalog this machine has ([`knobs`]).

mod knobs;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use smart_apply::detect::{self, NginxSetup};

use crate::Global;
use crate::error::CliError;

/// The config written: the repository's commented example.
const CONFIG: &str = include_str!("../../examples/smart.toml");
/// The experiment written: the open-file-cache example for a stock Debian/Ubuntu nginx, with the
/// values below replaced by what was detected.
const EXPERIMENT: &str = include_str!("../../examples/experiments/nginx-file-cache.json");
/// The experiment file's name, and of the file it owns in nginx's drop-in directory.
const EXPERIMENT_FILE: &str = "nginx-file-cache.json";
const OWNED_FILE: &str = "smart-file-cache.conf";
/// What [`EXPERIMENT`] says for a stock Debian nginx, each replaced by the detected value.
const STOCK_DIR: &str = "/etc/nginx/conf.d/";
const STOCK_INCLUDED_BY: &str = "which Debian's nginx includes inside http {}";
const STOCK_URL: &str = "\"http://127.0.0.1/\"";
const STOCK_TEST: &str = "[\"nginx\", \"-t\"]";
const STOCK_RELOAD: &str = "[\"nginx\", \"-s\", \"reload\"]";
const STOCK_SCHEDULE: &str = "\"schedule\": {\"cooldown_s\": 5, \"block_s\": 10, \"max_cycles\": 8, \"interleave\": true, \"soak_s\": 120, \"max_duration_s\": 3600}";
/// The schedule of `--quick`: 5 s blocks and a 20 s soak, for a first try in minutes.
const QUICK_SCHEDULE: &str = "\"schedule\": {\"cooldown_s\": 5, \"block_s\": 5, \"max_cycles\": 8, \"interleave\": true, \"soak_s\": 20, \"max_duration_s\": 900}";
/// What [`CONFIG`] says for the state, replaced by `--state-dir`.
const STOCK_STATE: &str = "state_dir = \"/var/lib/smart\"";
const STOCK_DASHBOARD: &str = "dashboard_dir = \"/var/lib/smart/dashboard\"";

/// Write a smart.toml and an experiment fitted to the local nginx
///
/// Runs `nginx -T` (reading nginx's config changes nothing) to find where the site listens, the
/// file that holds it, the directory `http {}` includes `*.conf` files from, and the commands
/// that test and reload that configuration. Then writes DIR/smart.toml and
/// DIR/experiments/nginx-file-cache.json: an experiment that owns one file in that directory and
/// tries two `open_file_cache` settings on the detected URL. Without a usable nginx it writes the
/// example for a stock Debian/Ubuntu nginx (port 80, /etc/nginx) and names the keys to edit.
/// Existing files are never overwritten: if either exists, nothing is written and the exit code
/// is 2. Then run `smart validate` in DIR.
///
/// With --detect OUT it writes, instead, one file per knob of smart's catalog that this machine
/// has (nginx's directives from `nginx -T`, sysctls from /proc/sys, a PostgreSQL cluster's config
/// files), each with its safe values centred on the value found and a one-line rationale in its
/// description: a search file for a range, an experiment with variants for a choice. It never
/// overwrites a file (it reports the ones it skipped) and says why for every knob it could not
/// write. Then run `smart validate OUT`.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::error::EXIT_CODES_HELP)]
pub(crate) struct Args {
    /// The directory to write into (created if missing)
    #[arg(value_name = "DIR", default_value = ".")]
    dir: PathBuf,
    /// The nginx binary to ask: a name on PATH or a path
    #[arg(long, value_name = "PATH", default_value = "nginx")]
    nginx: String,
    /// nginx's main config file, when it is not the compiled-in default (nginx -c); the test and
    /// reload commands written name it too
    #[arg(long, value_name = "PATH")]
    nginx_config: Option<PathBuf>,
    /// Where smart keeps its state (journal, backups, run records, dashboard), written to
    /// smart.toml; relative to DIR [default: /var/lib/smart]
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// A short schedule for a first try (5 s blocks, a 20 s soak, a 15-minute time box) instead
    /// of the production one (10 s blocks, a 2-minute soak, one hour)
    #[arg(long)]
    quick: bool,
    /// Write an experiment or search file per knob this machine has into OUT (created if
    /// missing), instead of smart.toml and the example
    #[arg(long, value_name = "OUT", conflicts_with_all = ["dir", "state_dir", "quick"])]
    detect: Option<PathBuf>,
    /// With --detect: the PostgreSQL cluster's postgresql.conf, read from disk (never connected
    /// to) [default: the newest /etc/postgresql/VERSION/CLUSTER/postgresql.conf, if any]
    #[arg(long, value_name = "PATH", requires = "detect")]
    postgres_config: Option<PathBuf>,
}

/// Detects nginx, then writes both files, or none (or, with --detect, the knobs' files).
pub(crate) fn run(args: &Args, global: &Global) -> Result<ExitCode, CliError> {
    if let Some(out) = &args.detect {
        return run_detect(args, out, global);
    }
    let config_path = args.dir.join(smart_core::config::LOCAL_CONFIG);
    let experiment_path = args.dir.join("experiments").join(EXPERIMENT_FILE);
    for path in [&config_path, &experiment_path] {
        if path.exists() {
            return Err(CliError::bad_input(format!(
                "{} already exists; smart init never overwrites a file: move it away or choose \
                 another directory (smart init DIR)",
                path.display()
            )));
        }
    }
    let nginx_config = absolute_nginx_config(args)?;
    let runtime = crate::revert::runtime()?;
    tracing::debug!(
        "running {} {}-T",
        args.nginx,
        nginx_config
            .as_ref()
            .map_or_else(String::new, |c| format!("-c {} ", c.display()))
    );
    let detected = runtime.block_on(detect::detect_nginx(&args.nginx, nginx_config.as_deref()));
    let (experiment, notes) = match &detected {
        Ok(setup) => fitted(setup, args.quick),
        Err(e) => (
            schedule(EXPERIMENT.to_owned(), args.quick),
            vec![format!(
                "no local nginx detected ({e}); wrote the example for a stock Debian/Ubuntu nginx \
                 (http://127.0.0.1/, /etc/nginx/conf.d/): edit target.urls, apply.health.url, \
                 apply.live_check.url, apply.files[0].path, apply.validate and apply.reload in {} \
                 to match your server",
                experiment_path.display()
            )],
        ),
    };
    let config = match &args.state_dir {
        Some(dir) => {
            let dir = dir
                .display()
                .to_string()
                .replace('\\', "\\\\")
                .replace('"', "\\\"");
            CONFIG
                .replace(STOCK_STATE, &format!("state_dir = \"{dir}\""))
                .replace(
                    STOCK_DASHBOARD,
                    &format!("dashboard_dir = \"{dir}/dashboard\""),
                )
        }
        None => CONFIG.to_owned(),
    };
    write_all(&[(&config_path, &config), (&experiment_path, &experiment)])?;
    let quiet = crate::logs::quiet();
    if let Ok(setup) = &detected
        && !quiet
    {
        let dump = &setup.dump;
        println!(
            "detected nginx: {} (listen in {}), config {}",
            dump.site.listen.url(),
            dump.site.file.display(),
            dump.main_config.display()
        );
        println!(
            "  test: {}; reload: {}",
            setup.test.join(" "),
            setup.reload.join(" ")
        );
    }
    for note in &notes {
        eprintln!("smart: warning: {note}");
    }
    if !quiet {
        println!("wrote {}", config_path.display());
        println!("wrote {}", experiment_path.display());
    }
    let probe = detected.as_ref().map_or_else(
        |_| "http://127.0.0.1/".to_owned(),
        |s| s.dump.site.listen.url(),
    );
    println!(
        "next: `smart probe {probe}` to measure what you have, then `smart validate` in {}",
        args.dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `smart init --detect OUT`: plans a file per knob present and writes those that do not exist.
fn run_detect(args: &Args, out: &Path, _global: &Global) -> Result<ExitCode, CliError> {
    let nginx_config = absolute_nginx_config(args)?;
    let runtime = crate::revert::runtime()?;
    let nginx = runtime.block_on(detect::detect_nginx(&args.nginx, nginx_config.as_deref()));
    let postgres = knobs::postgres_config(args.postgres_config.as_deref());
    let proc_sys = Path::new(detect::system::PROC_SYS);
    let found = knobs::Found {
        nginx: nginx.as_ref().ok(),
        machine: detect::Machine::read(),
        proc_sys,
        postgres,
    };
    let quiet = crate::logs::quiet();
    if !quiet {
        match &nginx {
            Ok(setup) => println!(
                "detected nginx: {} (config {})",
                setup.dump.site.listen.url(),
                setup.dump.main_config.display()
            ),
            Err(e) => println!("no nginx knobs: {e}"),
        }
        println!(
            "detected {} CPUs, {} MiB of memory",
            found.machine.cpus,
            found
                .machine
                .memory_mb()
                .map_or_else(|| "unknown".to_owned(), |m| m.to_string())
        );
        match &found.postgres {
            Some(Ok(pg)) => println!("detected PostgreSQL: {}", pg.file.display()),
            Some(Err(_)) => {}
            None => println!(
                "no PostgreSQL knobs: no /etc/postgresql/*/*/postgresql.conf (name one with --postgres-config)"
            ),
        }
    }
    let plans = knobs::plan(&found);
    std::fs::create_dir_all(out).map_err(|e| {
        CliError::runtime(format!(
            "cannot create {}: {e}; choose a writable directory",
            out.display()
        ))
    })?;
    let (mut wrote, mut skipped) = (0, 0);
    for plan in &plans {
        match plan {
            knobs::Plan::File {
                file,
                json,
                summary,
            } => {
                let path = out.join(file);
                let text = in_file_order(json).map_err(CliError::runtime)?;
                match write_new(&path, &text) {
                    Ok(()) => {
                        wrote += 1;
                        if !quiet {
                            println!("wrote {}: {summary}", path.display());
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        skipped += 1;
                        println!(
                            "skipped {}: it exists (smart init never overwrites a file)",
                            path.display()
                        );
                    }
                    Err(e) => {
                        return Err(CliError::runtime(format!(
                            "cannot write {}: {e}; check that the directory is writable",
                            path.display()
                        )));
                    }
                }
            }
            knobs::Plan::Skip { key, reason } => {
                println!("not written: {key}: {reason}");
            }
        }
    }
    println!(
        "{wrote} files written, {skipped} skipped; next: `smart validate {}`",
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The experiment as pretty JSON with its top-level keys in the order the docs and examples use
/// (name and description first, then what is measured, how it is applied, the values, the
/// schedule), not serde_json's alphabetical one.
fn in_file_order(json: &serde_json::Value) -> serde_json::Result<String> {
    const ORDER: &[&str] = &[
        "format_version",
        "name",
        "description",
        "target",
        "measure",
        "apply",
        "baseline",
        "variants",
        "search",
        "schedule",
        "decision",
    ];
    let Some(object) = json.as_object() else {
        return serde_json::to_string_pretty(json);
    };
    let mut keys: Vec<&String> = object.keys().collect();
    keys.sort_by_key(|k| ORDER.iter().position(|o| o == k).unwrap_or(ORDER.len()));
    let mut fields = Vec::new();
    for key in keys {
        let value = serde_json::to_string_pretty(&object[key.as_str()])?.replace('\n', "\n  ");
        fields.push(format!(
            "  {}: {value}",
            serde_json::Value::from(key.as_str())
        ));
    }
    Ok(format!("{{\n{}\n}}\n", fields.join(",\n")))
}

/// `--nginx-config` made absolute (nginx resolves `-c` against its prefix, not the cwd).
fn absolute_nginx_config(args: &Args) -> Result<Option<PathBuf>, CliError> {
    args.nginx_config
        .as_ref()
        .map(|path| {
            std::path::absolute(path)
                .map_err(|e| CliError::bad_input(format!("--nginx-config {}: {e}", path.display())))
        })
        .transpose()
}

/// The example experiment with the detected URL, drop-in file and commands, and the notes on
/// what could not be fitted.
fn fitted(setup: &NginxSetup, quick: bool) -> (String, Vec<String>) {
    let mut notes = Vec::new();
    let mut text = EXPERIMENT
        .replace(STOCK_URL, &json(&setup.dump.site.listen.url()))
        .replace(STOCK_TEST, &json_argv(&setup.test))
        .replace(STOCK_RELOAD, &json_argv(&setup.reload));
    match setup.dump.drop_in(OWNED_FILE) {
        Some((file, _)) => {
            let dir = file.parent().map_or_else(String::new, |d| {
                format!("{}/", d.display()).replace("//", "/")
            });
            // Inside a JSON string: the same escaping serde_json gives.
            let escaped = json(&dir);
            text = text
                .replace(STOCK_DIR, escaped.trim_matches('"'))
                .replace(STOCK_INCLUDED_BY, "which this nginx's http {} includes");
        }
        None => notes.push(format!(
            "nginx's http {{}} in {} includes no directory of *.conf files, so the experiment's \
             file {STOCK_DIR}{OWNED_FILE} would not be loaded: add `include {STOCK_DIR}*.conf;` \
             inside http {{}}, or change apply.files[0].path to a file that http {{}} includes",
            setup.dump.main_config.display()
        )),
    }
    (schedule(text, quick), notes)
}

/// `value` as JSON text: a string quoted and escaped.
fn json(value: &str) -> String {
    serde_json::Value::from(value).to_string()
}

/// An argv as a JSON array, spaced like the example (`["nginx", "-t"]`).
fn json_argv(argv: &[String]) -> String {
    let items: Vec<String> = argv.iter().map(|a| json(a)).collect();
    format!("[{}]", items.join(", "))
}

/// The experiment with the `--quick` schedule when asked.
fn schedule(text: String, quick: bool) -> String {
    if quick {
        text.replace(STOCK_SCHEDULE, QUICK_SCHEDULE)
    } else {
        text
    }
}

/// Writes every file, or none: a failure removes what was written.
fn write_all(files: &[(&Path, &String)]) -> Result<(), CliError> {
    let mut written: Vec<&Path> = Vec::new();
    for (path, content) in files {
        if let Err(e) = write_new(path, content) {
            // Leave the directory as it was: remove what this run wrote.
            for done in written {
                let _ = std::fs::remove_file(done);
            }
            return Err(CliError::runtime(format!(
                "cannot write {}: {e}; check that the directory is writable, or choose another \
                 (smart init DIR)",
                path.display()
            )));
        }
        written.push(path);
    }
    Ok(())
}

/// Creates `path` (and its directory) with `content`; fails if it exists.
fn write_new(path: &Path, content: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file: File = OpenOptions::new().write(true).create_new(true).open(path)?;
    file.write_all(content.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every stock value the fitting replaces is in the example, so an edit of the example that
    /// drops one fails here instead of writing an unfitted experiment.
    #[test]
    fn the_example_holds_every_value_that_is_replaced() {
        for needle in [
            STOCK_DIR,
            STOCK_INCLUDED_BY,
            STOCK_URL,
            STOCK_TEST,
            STOCK_RELOAD,
            STOCK_SCHEDULE,
        ] {
            assert!(EXPERIMENT.contains(needle), "{needle}");
        }
        assert!(CONFIG.contains(STOCK_STATE) && CONFIG.contains(STOCK_DASHBOARD));
    }

    #[test]
    fn detected_files_keep_the_documented_key_order_and_parse_back() {
        let value = serde_json::json!({
            "schedule": {"max_cycles": 16},
            "apply": {"files": [{"path": "/a", "template": "x\n"}]},
            "name": "n",
            "format_version": 1,
        });
        let text = in_file_order(&value).unwrap();
        assert!(
            text.starts_with(
                "{\n  \"format_version\": 1,\n  \"name\": \"n\",\n  \"apply\": {\n    \"files\""
            ),
            "{text}"
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            value
        );
    }

    #[test]
    fn fits_the_experiment_to_a_detected_nginx() {
        let dump = smart_apply::detect::nginx::parse_dump(
            "# configuration file /opt/n/nginx.conf:\nhttp { include /opt/n/d/*.conf; server { listen 127.0.0.1:8089; } }\n",
        )
        .unwrap();
        let setup = NginxSetup::new(
            dump,
            "/usr/sbin/nginx",
            Some(Path::new("/opt/n/nginx.conf")),
        );
        let (text, notes) = fitted(&setup, true);
        assert!(notes.is_empty(), "{notes:?}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["target"]["urls"][0], "http://127.0.0.1:8089/");
        assert_eq!(v["apply"]["health"]["url"], "http://127.0.0.1:8089/");
        assert_eq!(v["apply"]["live_check"]["url"], "http://127.0.0.1:8089/");
        assert_eq!(
            v["apply"]["files"][0]["path"],
            "/opt/n/d/smart-file-cache.conf"
        );
        assert_eq!(
            v["apply"]["reload"],
            serde_json::json!(["/usr/sbin/nginx", "-c", "/opt/n/nginx.conf", "-s", "reload"])
        );
        assert_eq!(v["schedule"]["block_s"], 5);
        assert!(
            !text.contains("/etc/nginx") && !text.contains("Debian"),
            "{text}"
        );
    }
}
