//! The `command` metric source on a real PostgreSQL 15, measured by pgbench through
//! `examples/postgres/smart-pgbench`: the test initdbs its own cluster on a free loopback port
//! (as the `postgres` user when run as root), changes a setting through the files applier
//! owning an include file, and stops the cluster at the end. The machine's own PostgreSQL is
//! never touched.
//!
//! The effects are far larger than timing noise: `commit_delay` (with `commit_siblings = 0`)
//! holds every committing transaction that long before its WAL flush, so 100 ms against 5 ms per
//! write transaction. A measuring command that hangs fails the run with the original back.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::json;
use smart_core::records::DecisionKind;
use smart_testkit::{free_port, require_tool};

use crate::support::{decisions, output_text};

const BIN: &str = "/usr/lib/postgresql/15/bin";

/// A PostgreSQL cluster of the test's own: data dir, socket dir and log under a temp dir.
struct Cluster {
    dir: tempfile::TempDir,
    port: u16,
    started: bool,
}

/// Whether the test runs as root (PostgreSQL refuses to, so it runs as `postgres` then).
fn is_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
}

impl Cluster {
    /// `None` (with the skip notice) when PostgreSQL 15 is missing outside CI.
    fn start(test: &str) -> Option<Cluster> {
        if !require_tool("pgbench", test) || !require_tool("psql", test) {
            return None;
        }
        if !Path::new(BIN).join("initdb").is_file() {
            assert!(
                std::env::var_os("CI").is_none(),
                "{test} needs PostgreSQL 15's server, which CI must install (postgresql-15)"
            );
            #[expect(clippy::print_stderr, reason = "the one-line skip notice")]
            {
                eprintln!(
                    "skipped {test}: {BIN}/initdb is missing (apt-get install postgresql-15)"
                );
            }
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let mut cluster = Cluster {
            port: free_port(),
            dir,
            started: false,
        };
        fs::create_dir(cluster.path("sock")).unwrap();
        if is_root() {
            cluster.chown_to_postgres(&cluster.path("sock"));
            cluster.chown_to_postgres(cluster.dir.path());
        }
        let data = cluster.path("data");
        cluster.as_postgres(&[
            &format!("{BIN}/initdb"),
            "-D",
            data.to_str().unwrap(),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
        ]);
        fs::create_dir(data.join("conf.d")).unwrap();
        if is_root() {
            cluster.chown_to_postgres(&data.join("conf.d"));
        }
        let extra = format!(
            "\nport = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             fsync = on\ncommit_siblings = 0\ninclude_dir = 'conf.d'\n",
            cluster.port,
            cluster.path("sock").display()
        );
        let conf = data.join("postgresql.conf");
        let mut text = fs::read_to_string(&conf).unwrap();
        text.push_str(&extra);
        fs::write(&conf, text).unwrap();
        cluster.as_postgres(&[
            &format!("{BIN}/pg_ctl"),
            "-D",
            data.to_str().unwrap(),
            "-l",
            cluster.path("postgres.log").to_str().unwrap(),
            "-w",
            "start",
        ]);
        cluster.started = true;
        let port = cluster.port.to_string();
        let init = Command::new("pgbench")
            .args(["-i", "-q", "-s", "1", "-h", "127.0.0.1", "-p", &port])
            .args(["-U", "postgres", "postgres"])
            .output()
            .unwrap();
        assert!(
            init.status.success(),
            "pgbench -i: {}",
            text_of(&init.stderr)
        );
        Some(cluster)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The include file the experiments own.
    fn owned(&self) -> PathBuf {
        self.path("data/conf.d/smart.conf")
    }

    fn chown_to_postgres(&self, path: &Path) {
        let out = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text_of(&out.stderr));
    }

    /// Runs `argv` as the `postgres` user when root (PostgreSQL refuses to run as root).
    fn as_postgres(&self, argv: &[&str]) {
        let mut command = if is_root() {
            let mut c = Command::new("setpriv");
            c.args([
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "--reset-env",
            ]);
            c.args(argv);
            c
        } else {
            let mut c = Command::new(argv[0]);
            c.args(&argv[1..]);
            c
        };
        let out = command
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{argv:?}: {}{}",
            text_of(&out.stdout),
            text_of(&out.stderr)
        );
    }

    fn psql_argv(&self, sql: &str) -> Vec<String> {
        [
            "psql",
            "-X",
            "-A",
            "-t",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-c",
            sql,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    }

    /// A setting as the running server has it.
    fn show(&self, setting: &str) -> String {
        let argv = self.psql_argv(&format!("SHOW {setting}"));
        let out = Command::new(&argv[0]).args(&argv[1..]).output().unwrap();
        assert!(out.status.success(), "{}", text_of(&out.stderr));
        text_of(&out.stdout).trim().to_owned()
    }

    /// A smart.toml and one experiment over this cluster, in the temp dir.
    fn experiment(&self, name: &str, measure: serde_json::Value, variants: serde_json::Value) {
        fs::create_dir_all(self.path("experiments")).unwrap();
        fs::write(self.path("smart.toml"), crate::support::SMART_TOML).unwrap();
        let experiment = json!({
            "name": name,
            "measure": measure,
            "apply": {
                "files": [{"path": self.owned(),
                           "template": "commit_delay = {{ delay_us }}\n"}],
                "validate": self.psql_argv(VALIDATE_SQL),
                "reload": self.psql_argv("SELECT pg_reload_conf(), pg_sleep(0.2)"),
            },
            "baseline": {"delay_us": 5000},
            "variants": variants,
            "schedule": {"cooldown_s": 0.3, "block_s": 1, "max_cycles": 12, "soak_s": 1,
                         "max_duration_s": 300},
        });
        fs::write(
            self.path("experiments").join(format!("{name}.json")),
            serde_json::to_string_pretty(&experiment).unwrap(),
        )
        .unwrap();
    }

    fn pgbench_measure(&self) -> serde_json::Value {
        let wrapper = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples/postgres/smart-pgbench")
            .canonicalize()
            .unwrap();
        json!({"source": "command", "command": {
            "argv": [wrapper, "-h", "127.0.0.1", "-p", self.port.to_string(), "-U", "postgres",
                     "-c", "4", "-j", "2", "-N", "postgres"],
        }})
    }

    fn smart(&self, args: &[&str]) -> Output {
        crate::support::smart(self.dir.path(), args)
    }
}

/// The validate step: a config file PostgreSQL cannot read, or a setting of ours that a later
/// file (`postgresql.auto.conf`, from `ALTER SYSTEM`) overrides, fails it.
const VALIDATE_SQL: &str = "DO $$ BEGIN \
    IF EXISTS (SELECT 1 FROM pg_file_settings WHERE error IS NOT NULL) THEN \
      RAISE EXCEPTION 'a config file has an error: see pg_file_settings'; END IF; \
    IF EXISTS (SELECT 1 FROM pg_file_settings WHERE sourcefile LIKE '%/conf.d/smart.conf' \
      AND NOT applied AND error IS NULL) THEN \
      RAISE EXCEPTION 'a later file (postgresql.auto.conf?) overrides smart.conf'; END IF; \
    END $$";

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.started {
            let data = self.path("data");
            self.as_postgres(&[
                &format!("{BIN}/pg_ctl"),
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ]);
        }
    }
}

fn text_of(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// pgbench through the wrapper keeps a 5 ms → 0 commit delay and reverts 5 ms → 100 ms; what
/// PostgreSQL runs afterwards and the owned file's bytes are what each decision says.
#[test]
fn pgbench_keeps_a_large_win_and_reverts_a_large_loss_on_real_postgres() {
    let Some(pg) = Cluster::start("pgbench_keeps_a_large_win_and_reverts_a_large_loss") else {
        return;
    };
    // The file as found: absent; the baseline arm renders 5 ms.
    assert!(!pg.owned().exists());
    pg.experiment(
        "pg-slower",
        pg.pgbench_measure(),
        json!([{"name": "delay-100ms", "params": {"delay_us": 100000}}]),
    );
    let out = pg.smart(&["run", "--once"]);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(
        decisions(pg.dir.path()),
        [("delay-100ms".to_owned(), DecisionKind::Revert)]
    );
    assert!(!pg.owned().exists(), "the file as found (absent) is back");
    assert_eq!(
        pg.show("commit_delay"),
        "0",
        "the running server is back on its default"
    );

    fs::remove_file(pg.path("experiments/pg-slower.json")).unwrap();
    pg.experiment(
        "pg-faster",
        pg.pgbench_measure(),
        json!([{"name": "delay-0", "params": {"delay_us": 0}}]),
    );
    let out = pg.smart(&["run", "--once"]);
    assert!(out.status.success(), "{}", output_text(&out));
    let all = decisions(pg.dir.path());
    assert_eq!(
        all.last(),
        Some(&("delay-0".to_owned(), DecisionKind::Keep)),
        "{all:?}"
    );
    assert_eq!(
        fs::read_to_string(pg.owned()).unwrap(),
        "commit_delay = 0\n"
    );
    assert_eq!(pg.show("commit_delay"), "0");
}

/// A measuring command that never ends is killed after its grace, with its children; the run
/// fails with exit code 3 and a message naming the fix, and the original is back.
#[test]
fn a_hung_measuring_command_fails_the_run_with_the_original_back() {
    let Some(pg) = Cluster::start("a_hung_measuring_command_fails_the_run") else {
        return;
    };
    fs::write(pg.owned(), "# as found\n").unwrap();
    pg.experiment(
        "pg-hung",
        json!({"source": "command", "command": {"argv": ["sleep", "600"], "grace_s": 1}}),
        json!([{"name": "delay-0", "params": {"delay_us": 0}}]),
    );
    let out = pg.smart(&["run", "--once"]);
    let all = output_text(&out);
    assert_eq!(out.status.code(), Some(3), "{all}");
    assert!(all.contains("measure.command.grace_s"), "{all}");
    assert_eq!(fs::read_to_string(pg.owned()).unwrap(), "# as found\n");
    assert_eq!(pg.show("commit_delay"), "0");
}

/// `smart calibrate` measures its A/A blocks with the experiment's command source (pgbench on
/// the real cluster, not smart's HTTP probe): it completes, stores the noise under the source's
/// name, and changes nothing.
#[test]
fn calibrate_measures_with_pgbench() {
    let Some(pg) = Cluster::start("calibrate_measures_with_pgbench") else {
        return;
    };
    pg.experiment(
        "pg-calib",
        pg.pgbench_measure(),
        json!([{"name": "delay-0", "params": {"delay_us": 0}}]),
    );
    let out = pg.smart(&[
        "calibrate",
        "experiments/pg-calib.json",
        "--pairs",
        "4",
        "--json",
    ]);
    crate::support::assert_calibrated(&out, "command", 4);
    assert!(!pg.owned().exists(), "calibrate changes nothing");
    assert_eq!(pg.show("commit_delay"), "0");
}
