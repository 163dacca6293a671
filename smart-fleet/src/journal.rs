//! The fleet journal: which host runs what, written (atomically, fsynced) BEFORE each change, so
//! that after a SIGKILL of the coordinator at any point `smart recover` knows every host it may
//! have touched and reverts them through the same argv.
//!
//! One file per experiment: `STATE_DIR/fleet/NAME.json`. It holds everything recovery needs
//! (the argv, its directory, the inventory, the baseline params), so recovery does not depend on
//! the experiment file still being there or unchanged.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use smart_core::BASELINE;
use smart_core::atomic::{AtomicWrite, Sync};
use smart_core::experiment::Params;

use crate::ansible::{CommandSwitch, Switch};
use crate::error::FleetError;

/// What a host runs, as far as the coordinator knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "arm")]
pub enum HostState {
    /// A switch to this arm was started and has not been confirmed: the host runs either.
    Changing(String),
    /// The host runs this arm (`baseline` or the variant's name).
    Runs(String),
}

/// How a fleet experiment ended; absent while it runs (or after a crash).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finish {
    /// The variant was kept and promoted: every host runs it.
    Kept,
    /// Every touched host was put back to the baseline.
    Reverted,
    /// `smart recover` put every touched host back.
    Recovered,
}

/// The journal's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalRecord {
    /// The experiment's name.
    pub experiment: String,
    /// The variant's name.
    pub variant: String,
    /// The apply argv template.
    pub argv: Vec<String>,
    /// Where it runs.
    pub dir: PathBuf,
    /// The inventory.
    pub inventory: PathBuf,
    /// The params a revert renders.
    pub baseline: Params,
    /// The most one command may take, in seconds.
    pub command_timeout_s: f64,
    /// Every host the experiment touched, and what it runs.
    pub hosts: BTreeMap<String, HostState>,
    /// How it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<Finish>,
}

impl JournalRecord {
    /// The hosts that may run something other than the baseline, sorted.
    pub fn to_revert(&self) -> Vec<String> {
        self.hosts
            .iter()
            .filter(|(_, s)| **s != HostState::Runs(BASELINE.to_owned()))
            .map(|(h, _)| h.clone())
            .collect()
    }

    /// The switch recovery runs: the journal's own argv, directory and inventory.
    pub fn switch(&self) -> CommandSwitch {
        CommandSwitch {
            argv: self.argv.clone(),
            dir: self.dir.clone(),
            inventory: self.inventory.clone(),
            timeout: Duration::from_secs_f64(self.command_timeout_s),
            pid_dir: None,
        }
    }
}

/// The journal of one running fleet experiment.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    record: JournalRecord,
}

/// Where fleet journals live under a state dir.
pub fn journal_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("fleet")
}

/// Where the coordinator keeps the process group ids of the commands it is running, for
/// recovery to stop them (see [`CommandSwitch::pid_dir`]).
pub fn running_dir(state_dir: &Path) -> PathBuf {
    journal_dir(state_dir).join("running")
}

impl Journal {
    /// Starts the journal of `record.experiment` under `state_dir`. Refuses while an unfinished
    /// journal of the same experiment is there (a crashed run `smart recover` has not put back).
    pub fn create(state_dir: &Path, record: JournalRecord) -> Result<Journal, FleetError> {
        let dir = journal_dir(state_dir);
        std::fs::create_dir_all(&dir).map_err(|e| {
            FleetError::runtime(format!(
                "cannot create the fleet journal dir {}: {e}; check the state dir's permissions",
                dir.display()
            ))
        })?;
        let path = dir.join(format!("{}.json", record.experiment));
        if let Ok(old) = read(&path)
            && old.finished.is_none()
            && !old.to_revert().is_empty()
        {
            return Err(FleetError::invalid(format!(
                "fleet experiment `{}` was interrupted and hosts {} may still run `{}`: run \
                 `smart recover` first",
                old.experiment,
                old.to_revert().join(", "),
                old.variant
            )));
        }
        let journal = Journal { path, record };
        journal.save()?;
        Ok(journal)
    }

    /// The record as last written.
    pub fn record(&self) -> &JournalRecord {
        &self.record
    }

    /// Records that `hosts` are about to switch to `arm`: called before the command runs.
    pub fn changing(&mut self, hosts: &[String], arm: &str) -> Result<(), FleetError> {
        for h in hosts {
            self.record
                .hosts
                .insert(h.clone(), HostState::Changing(arm.to_owned()));
        }
        self.save()
    }

    /// Records that `hosts` run `arm`.
    pub fn runs(&mut self, hosts: &[String], arm: &str) -> Result<(), FleetError> {
        for h in hosts {
            self.record
                .hosts
                .insert(h.clone(), HostState::Runs(arm.to_owned()));
        }
        self.save()
    }

    /// Records how the experiment ended.
    pub fn finish(&mut self, finish: Finish) -> Result<(), FleetError> {
        self.record.finished = Some(finish);
        self.save()
    }

    fn save(&self) -> Result<(), FleetError> {
        write(&self.path, &self.record)
    }
}

fn write(path: &Path, record: &JournalRecord) -> Result<(), FleetError> {
    let bytes = serde_json::to_vec_pretty(record)
        .map_err(|e| FleetError::runtime(format!("cannot encode the fleet journal: {e}")))?;
    AtomicWrite::new(path)
        .sync(Sync::FileAndDir)
        .write(&bytes)
        .map_err(|e| {
            FleetError::runtime(format!(
                "cannot write the fleet journal {}: {e}; nothing more is changed until it can \
                 be written (free space in the state dir)",
                path.display()
            ))
        })
}

fn read(path: &Path) -> Result<JournalRecord, FleetError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        FleetError::runtime(format!(
            "cannot read the fleet journal {}: {e}",
            path.display()
        ))
    })?;
    serde_json::from_str(&text).map_err(|e| {
        FleetError::runtime(format!(
            "the fleet journal {} is damaged ({e}); revert its hosts by hand",
            path.display()
        ))
    })
}

/// What recovery did for one interrupted fleet experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct Recovered {
    /// The experiment.
    pub experiment: String,
    /// The hosts put back to the baseline.
    pub hosts: Vec<String>,
}

/// Puts back every host of every interrupted fleet experiment under `state_dir`, through each
/// journal's own argv; marks the journals recovered. Hosts that cannot be put back are named in
/// the error and their journal stays, so the next `smart recover` tries again.
pub async fn recover(state_dir: &Path) -> Result<Vec<Recovered>, FleetError> {
    recover_with(state_dir, |record: &JournalRecord| record.switch()).await
}

/// [`recover`] with the switch each journal gets from `switch_of` (tests use a fake).
pub async fn recover_with<S: Switch>(
    state_dir: &Path,
    switch_of: impl Fn(&JournalRecord) -> S,
) -> Result<Vec<Recovered>, FleetError> {
    // A switch a killed coordinator left running would write its hosts after the revert.
    crate::ansible::stop_orphans(&running_dir(state_dir)).await;
    let dir = journal_dir(state_dir);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(Vec::new());
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    let mut done = Vec::new();
    let mut failures = Vec::new();
    let mut failed_hosts = Vec::new();
    for path in paths {
        let record = read(&path)?;
        if record.finished.is_some() {
            continue;
        }
        let hosts = record.to_revert();
        let mut journal = Journal { path, record };
        if !hosts.is_empty() {
            journal.changing(&hosts, BASELINE)?;
            let switch = switch_of(&journal.record);
            if let Err(f) = switch
                .switch(BASELINE, &journal.record.baseline, &hosts)
                .await
            {
                let ok: Vec<String> = hosts
                    .iter()
                    .filter(|h| !f.failed.contains_key(*h))
                    .cloned()
                    .collect();
                journal.runs(&ok, BASELINE)?;
                failures.push(format!(
                    "fleet experiment `{}`: could not put back {}",
                    journal.record.experiment,
                    f.describe()
                ));
                failed_hosts.extend(f.failed.into_keys());
                continue;
            }
            journal.runs(&hosts, BASELINE)?;
        }
        journal.finish(Finish::Recovered)?;
        done.push(Recovered {
            experiment: journal.record.experiment.clone(),
            hosts,
        });
    }
    if failures.is_empty() {
        Ok(done)
    } else {
        Err(FleetError::hosts(
            format!(
                "{}; fix those hosts (see the reasons) and run `smart recover` again",
                failures.join("; ")
            ),
            failed_hosts,
        ))
    }
}
