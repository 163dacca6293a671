//! Runs the fleet's commands (argv vectors, never a shell) and reads Ansible's per-host result:
//! the apply argv with `ANSIBLE_STDOUT_CALLBACK=json`, whose `stats` (the play recap) and failed
//! task results name each host that failed, and `ansible-inventory --list`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process_group};
use smart_core::experiment::Params;
use smart_core::template::render;

use crate::error::FleetError;
use crate::spec::argv_values;

/// At most this much of a command's stderr goes into a message.
const STDERR_LIMIT: usize = 1500;

/// How a command ended.
#[derive(Debug)]
pub(crate) struct Ran {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Ran {
    fn describe(&self) -> String {
        let how = match self.code {
            Some(code) => format!("exit code {code}"),
            None => "killed by a signal".to_owned(),
        };
        let stderr = self.stderr.trim();
        if stderr.is_empty() {
            how
        } else {
            let cut: String = stderr.chars().take(STDERR_LIMIT).collect();
            format!("{how}: {cut}")
        }
    }
}

/// Runs `argv` in `dir` to completion or `timeout` (then it is killed), with Ansible's JSON
/// output callback and no colour, in a process group of its own that is killed whole when the
/// run is dropped (a timeout, a stop). With `pid_dir`, the group's id is kept in a file there
/// while it runs, so that recovery after a SIGKILL of the coordinator can stop a switch still
/// under way before it reverts (see [`stop_orphans`]).
pub(crate) async fn run(
    argv: &[String],
    dir: &Path,
    timeout: Duration,
    pid_dir: Option<&Path>,
) -> Result<Ran, FleetError> {
    let Some((program, args)) = argv.split_first() else {
        return Err(FleetError::invalid("empty command"));
    };
    let child = tokio::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("ANSIBLE_STDOUT_CALLBACK", "json")
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_RETRY_FILES_ENABLED", "0")
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            let fix = if e.kind() == std::io::ErrorKind::NotFound {
                "install it (Debian: ansible-core) or give its full path"
            } else {
                "check that it is executable"
            };
            FleetError::invalid(format!("cannot start `{program}`: {e}; {fix}"))
        })?;
    let pid = child.id().and_then(|id| Pid::from_raw(id as i32));
    let pid_file = match (pid, pid_dir) {
        (Some(pid), Some(dir)) => {
            let file = dir.join(pid.as_raw_nonzero().to_string());
            std::fs::create_dir_all(dir)
                .and_then(|()| std::fs::write(&file, program))
                .map_err(|e| {
                    FleetError::runtime(format!(
                        "cannot record the running command in {}: {e}; check the state dir",
                        dir.display()
                    ))
                })?;
            Some(file)
        }
        _ => None,
    };
    let _group = GroupGuard { pid, pid_file };
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => Err(FleetError::runtime(format!(
            "`{program}` ran longer than {} s and was killed; raise fleet.command_timeout_s or \
             find what hangs",
            timeout.as_secs_f64()
        ))),
        Ok(Err(e)) => Err(FleetError::runtime(format!(
            "`{program}` failed to run: {e}"
        ))),
        Ok(Ok(out)) => Ok(Ran {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }),
    }
}

/// Kills a command's process group when dropped (its workers must not outlive a timeout or a
/// stop) and removes its pid file.
struct GroupGuard {
    pid: Option<Pid>,
    pid_file: Option<PathBuf>,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            // After a normal exit the group is usually gone already: nothing to do then.
            let _ = kill_process_group(pid, Signal::KILL);
        }
        if let Some(file) = &self.pid_file {
            let _ = std::fs::remove_file(file);
        }
    }
}

/// Stops the commands a killed coordinator left running (their pid files in `pid_dir`), so that
/// none of them writes a host after recovery reverted it: SIGTERM to each live group whose
/// leader is still the recorded program, up to 10 s to exit, then SIGKILL.
pub(crate) async fn stop_orphans(pid_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(pid_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.path();
        let program = std::fs::read_to_string(&file).unwrap_or_default();
        let pid = file
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<i32>().ok())
            .and_then(Pid::from_raw);
        if let Some(pid) = pid {
            let alive = || {
                let name = Path::new(&program)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                std::fs::read(format!("/proc/{}/cmdline", pid.as_raw_nonzero()))
                    .is_ok_and(|c| !name.is_empty() && String::from_utf8_lossy(&c).contains(&name))
            };
            if alive() {
                let _ = kill_process_group(pid, Signal::TERM);
                let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
                while alive() && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                let _ = kill_process_group(pid, Signal::KILL);
            }
        }
        let _ = std::fs::remove_file(&file);
    }
}

/// The hosts of `group` (or `all`) in the inventory `inventory`, sorted, read with
/// `ansible-inventory -i INVENTORY --list`.
pub async fn inventory_hosts(
    inventory: &Path,
    group: &str,
    timeout: Duration,
) -> Result<Vec<String>, FleetError> {
    let argv = vec![
        "ansible-inventory".to_owned(),
        "-i".to_owned(),
        inventory.display().to_string(),
        "--list".to_owned(),
    ];
    let dir = inventory.parent().unwrap_or(Path::new("/"));
    let ran = run(&argv, dir, timeout, None).await?;
    if ran.code != Some(0) {
        return Err(FleetError::invalid(format!(
            "fleet.inventory {}: ansible-inventory failed ({}); check the inventory",
            inventory.display(),
            ran.describe()
        )));
    }
    let hosts = group_hosts(&ran.stdout, group).map_err(|e| {
        FleetError::invalid(format!("fleet.inventory {}: {e}", inventory.display()))
    })?;
    Ok(hosts)
}

/// The hosts of `group` in `ansible-inventory --list` JSON, children included, sorted.
pub(crate) fn group_hosts(json: &str, group: &str) -> Result<Vec<String>, String> {
    let list: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| format!("ansible-inventory printed something other than JSON: {e}"))?;
    let Some(groups) = list.as_object() else {
        return Err("ansible-inventory's JSON is not an object".to_owned());
    };
    if !groups.contains_key(group) && group != "all" {
        let known: Vec<&String> = groups.keys().filter(|k| *k != "_meta").collect();
        return Err(format!(
            "fleet.group `{group}` is not a group of the inventory (groups: {known:?}); fix \
             fleet.group"
        ));
    }
    let mut hosts = std::collections::BTreeSet::new();
    let mut stack = vec![group.to_owned()];
    let mut seen = std::collections::BTreeSet::new();
    while let Some(name) = stack.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let Some(entry) = groups.get(&name) else {
            continue;
        };
        for h in entry["hosts"].as_array().into_iter().flatten() {
            if let Some(h) = h.as_str() {
                hosts.insert(h.to_owned());
            }
        }
        for c in entry["children"].as_array().into_iter().flatten() {
            if let Some(c) = c.as_str() {
                stack.push(c.to_owned());
            }
        }
    }
    if let Some(vars) = list["_meta"]["hostvars"].as_object()
        && group == "all"
    {
        hosts.extend(vars.keys().cloned());
    }
    if hosts.is_empty() {
        return Err(format!(
            "fleet.group `{group}` has no hosts; add hosts to it or pick another group"
        ));
    }
    Ok(hosts.into_iter().collect())
}

/// Why each host of a command failed, from Ansible's JSON output; `Err` when the output is not
/// the JSON callback's (a syntax error, another tool).
pub(crate) fn failed_hosts(stdout: &str, hosts: &[String]) -> Result<BTreeMap<String, String>, ()> {
    let start = stdout.find('{').ok_or(())?;
    let out: serde_json::Value = serde_json::from_str(&stdout[start..]).map_err(|_| ())?;
    let stats = out["stats"].as_object().ok_or(())?;
    let mut reasons: BTreeMap<String, String> = BTreeMap::new();
    for play in out["plays"].as_array().into_iter().flatten() {
        for task in play["tasks"].as_array().into_iter().flatten() {
            let name = task["task"]["name"].as_str().unwrap_or("a task");
            for (host, result) in task["hosts"].as_object().into_iter().flatten() {
                let failed = result["failed"].as_bool() == Some(true)
                    || result["unreachable"].as_bool() == Some(true);
                if failed && !reasons.contains_key(host) {
                    let msg = result["msg"]
                        .as_str()
                        .map(str::to_owned)
                        .or_else(|| result["stderr"].as_str().map(str::to_owned))
                        .unwrap_or_else(|| "failed".to_owned());
                    let msg: String = msg.chars().take(STDERR_LIMIT).collect();
                    reasons.insert(host.clone(), format!("task `{name}`: {msg}"));
                }
            }
        }
    }
    let mut failed = BTreeMap::new();
    for host in hosts {
        match stats.get(host) {
            None => {
                failed.insert(
                    host.clone(),
                    "not in the play recap: the play did not run on it (is it in the inventory \
                     and in the play's hosts?)"
                        .to_owned(),
                );
            }
            Some(s) => {
                let bad =
                    s["failures"].as_u64().unwrap_or(0) + s["unreachable"].as_u64().unwrap_or(0);
                if bad > 0 {
                    let reason = reasons
                        .remove(host)
                        .unwrap_or_else(|| "failed (see the play recap)".to_owned());
                    failed.insert(host.clone(), reason);
                }
            }
        }
    }
    Ok(failed)
}

/// Some hosts could not be switched.
#[derive(Debug, Clone, PartialEq)]
pub struct SwitchFailure {
    /// Each failed host and why.
    pub failed: BTreeMap<String, String>,
}

impl SwitchFailure {
    /// `h4 (task `write`: permission denied), h2 (...)`.
    pub fn describe(&self) -> String {
        self.failed
            .iter()
            .map(|(h, why)| format!("{h} ({why})"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The port that switches hosts: the coordinator and recovery switch through it.
pub trait Switch {
    /// Switches every host of `hosts` to `params` (`arm` is the arm's name: `baseline` or the
    /// variant's), and says which hosts failed.
    fn switch(
        &self,
        arm: &str,
        params: &Params,
        hosts: &[String],
    ) -> impl std::future::Future<Output = Result<(), SwitchFailure>>;
}

impl<T: Switch> Switch for &T {
    async fn switch(
        &self,
        arm: &str,
        params: &Params,
        hosts: &[String],
    ) -> Result<(), SwitchFailure> {
        (**self).switch(arm, params, hosts).await
    }
}

/// Switches hosts by running the experiment's apply argv with `{{ hosts }}` and the params.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandSwitch {
    /// The argv template.
    pub argv: Vec<String>,
    /// Where it runs.
    pub dir: PathBuf,
    /// The inventory, for `{{ inventory }}`.
    pub inventory: PathBuf,
    /// The most one run may take.
    pub timeout: Duration,
    /// Where the running command's process group id is kept while it runs (the journal's
    /// `running` dir), or nowhere.
    pub pid_dir: Option<PathBuf>,
}

impl Switch for CommandSwitch {
    async fn switch(
        &self,
        arm: &str,
        params: &Params,
        hosts: &[String],
    ) -> Result<(), SwitchFailure> {
        let all = |why: String| SwitchFailure {
            failed: hosts.iter().map(|h| (h.clone(), why.clone())).collect(),
        };
        let values = argv_values(&self.inventory, arm, params, hosts);
        let argv: Result<Vec<String>, _> = self.argv.iter().map(|a| render(a, &values)).collect();
        let argv = argv.map_err(|e| all(format!("apply.argv does not render: {}", e.message)))?;
        let ran = run(&argv, &self.dir, self.timeout, self.pid_dir.as_deref())
            .await
            .map_err(|e| all(e.to_string()))?;
        match failed_hosts(&ran.stdout, hosts) {
            Ok(failed) if failed.is_empty() && ran.code == Some(0) => Ok(()),
            Ok(failed) if !failed.is_empty() => Err(SwitchFailure { failed }),
            _ => Err(all(format!("`{}` failed ({})", argv[0], ran.describe()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVENTORY: &str = r#"{
        "_meta": {"hostvars": {"h1": {}, "h2": {}, "h3": {}, "db1": {}}},
        "all": {"children": ["ungrouped", "web", "db"]},
        "web": {"children": ["edge"], "hosts": ["h2", "h1"]},
        "edge": {"hosts": ["h3"]},
        "db": {"hosts": ["db1"]}
    }"#;

    #[test]
    fn a_group_has_its_hosts_and_its_childrens_sorted() {
        let check = |group: &str, expected: &[&str]| {
            assert_eq!(group_hosts(INVENTORY, group).unwrap(), expected, "{group}");
        };
        check("web", &["h1", "h2", "h3"]);
        check("edge", &["h3"]);
        check("all", &["db1", "h1", "h2", "h3"]);
        let err = group_hosts(INVENTORY, "cache").unwrap_err();
        assert!(err.contains("fleet.group `cache` is not a group"), "{err}");
        assert!(
            group_hosts("nope", "all")
                .unwrap_err()
                .contains("other than JSON")
        );
    }

    fn hosts(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_json_callback_names_each_failed_host_with_its_task() {
        let out = r#"{"plays": [{"tasks": [{"task": {"name": "write the config"}, "hosts": {
            "h1": {"changed": true},
            "h2": {"failed": true, "msg": "Destination directory /nope does not exist"}}}]}],
            "stats": {"h1": {"failures": 0, "unreachable": 0},
                      "h2": {"failures": 1, "unreachable": 0}}}"#;
        let failed = failed_hosts(out, &hosts(&["h1", "h2", "h3"])).unwrap();
        assert_eq!(failed.len(), 2);
        assert_eq!(
            failed["h2"],
            "task `write the config`: Destination directory /nope does not exist"
        );
        assert!(failed["h3"].contains("not in the play recap"));
        assert!(failed_hosts("ERROR! syntax", &hosts(&["h1"])).is_err());
        assert!(failed_hosts(out, &hosts(&["h1"])).unwrap().is_empty());
    }
}
