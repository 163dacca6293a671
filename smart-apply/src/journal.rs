//! The run journal: `journal.jsonl` in a run's dir, one fsynced JSON record per line.
//!
//! Before each mutating step an [`Record::Intent`] is appended and fsynced; after it, a
//! [`Record::Done`] with the same id. A run is closed by [`Record::Kept`] or [`Record::Closed`];
//! any intent after the last close reopens it (e.g. a `revert` after a keep). A torn last line,
//! left by a crash mid-append, is read as absent (an intent without its done record) and cut off
//! before the next append.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Step};
use crate::fsio;

/// One journal record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Record {
    /// A run started; nothing has changed yet.
    Begin {
        /// The experiment's name.
        experiment: String,
        /// The run's id.
        run_id: String,
    },
    /// Every original is saved (see `manifest.json`); changes may follow.
    BackedUp {
        /// The command applier's captured value, when there is one.
        command_original: Option<String>,
    },
    /// A switch to an arm starts; `live_value` is what the live check expects once it serves.
    Switch {
        /// The arm's name (`baseline` for the configuration as found).
        arm: String,
        /// The rendered `live_check.equals`, when the arm has one.
        live_value: Option<String>,
    },
    /// A mutating step is about to run.
    Intent {
        /// Pairs the intent with its done record.
        id: u64,
        /// What is about to change.
        op: Op,
    },
    /// The intent with this id completed.
    Done {
        /// The intent's id.
        id: u64,
    },
    /// An arm is live and passed its checks.
    Live {
        /// The arm's name.
        arm: String,
    },
    /// The run was closed with this variant left live; recovery never reverts it.
    Kept {
        /// The variant's name.
        arm: String,
    },
    /// The run was closed with the original configuration restored and verified.
    Closed {
        /// Why it closed.
        how: CloseReason,
    },
}

/// A mutating step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Op {
    /// File `file` (index in the manifest) becomes content with checksum `sha` (`None`: removed).
    Write {
        /// Index of the file in the manifest.
        file: usize,
        /// Its path, for humans reading the journal.
        path: PathBuf,
        /// Checksum of the new content; `None` when the file is removed.
        sha: Option<String>,
    },
    /// The command applier's `set` runs with this argv.
    Set {
        /// The rendered argv.
        argv: Vec<String>,
    },
    /// The command applier's revert runs.
    RevertCommand,
    /// `reload` runs.
    Reload,
}

/// Why a run closed on its original.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// The run ended (or was reverted on demand) and the original was put back.
    Reverted,
    /// Recovery found the run interrupted and put the original back.
    Recovered,
    /// The run stopped before it changed anything.
    NothingChanged,
}

/// An append handle on a journal file.
#[derive(Debug)]
pub(crate) struct Journal {
    file: File,
    path: PathBuf,
    next_id: u64,
}

/// What a journal says, replayed.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    pub(crate) records: Vec<Record>,
    /// Whether the last line was torn (cut off mid-write).
    pub(crate) torn: bool,
}

impl Replay {
    /// Whether the run is closed: a keep or close after the last intent.
    pub(crate) fn closed(&self) -> Option<&Record> {
        for record in self.records.iter().rev() {
            match record {
                Record::Kept { .. } | Record::Closed { .. } => return Some(record),
                Record::Intent { .. } => return None,
                _ => {}
            }
        }
        None
    }

    /// Whether the originals were all saved (nothing changes before that).
    pub(crate) fn backed_up(&self) -> bool {
        self.records
            .iter()
            .any(|r| matches!(r, Record::BackedUp { .. }))
    }

    /// Every checksum smart may have written to file `index` (intents count, done or not).
    pub(crate) fn written(&self, index: usize) -> Vec<Option<String>> {
        self.records
            .iter()
            .filter_map(|r| match r {
                Record::Intent {
                    op: Op::Write { file, sha, .. },
                    ..
                } if *file == index => Some(sha.clone()),
                _ => None,
            })
            .collect()
    }

    /// Whether a `set` may have run since the command was last reverted.
    pub(crate) fn command_set(&self) -> bool {
        let mut set = false;
        for record in &self.records {
            match record {
                Record::Intent {
                    op: Op::Set { .. }, ..
                } => set = true,
                Record::Closed { .. } => set = false,
                _ => {}
            }
        }
        set
    }

    /// The last intent without a done record, if the run stopped in the middle of a step.
    pub(crate) fn pending(&self) -> Option<&Op> {
        let mut pending = None;
        for record in &self.records {
            match record {
                Record::Intent { id, op } => pending = Some((*id, op)),
                Record::Done { id } if pending.is_some_and(|(p, _)| p == *id) => pending = None,
                _ => {}
            }
        }
        pending.map(|(_, op)| op)
    }
}

/// Reads and parses a journal; a torn last line is dropped, any other bad line is an error.
pub(crate) fn read(path: &Path) -> Result<Replay, Error> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| Error::state(format_args!("read journal {}", path.display()), e))?;
    let mut replay = Replay::default();
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    replay.torn = complete < bytes.len();
    for (i, line) in bytes[..complete]
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
    {
        let record = serde_json::from_slice(line).map_err(|e| {
            Error::new(
                ErrorKind::State,
                Step::State,
                format!(
                    "journal {} line {}: not a valid record ({e}); it was edited or the disk is damaged: restore the files from {} by hand",
                    path.display(),
                    i + 1,
                    path.with_file_name("backup").display()
                ),
            )
        })?;
        replay.records.push(record);
    }
    Ok(replay)
}

impl Journal {
    /// Creates a new journal (its dir must exist) and fsyncs the dir.
    pub(crate) fn create(path: &Path) -> Result<Journal, Error> {
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(path)
            .and_then(|f| {
                fsio::sync_dir(path.parent().unwrap_or(Path::new(".")))?;
                Ok(f)
            })
            .map_err(|e| Error::state(format_args!("create journal {}", path.display()), e))?;
        Ok(Journal {
            file,
            path: path.to_owned(),
            next_id: 1,
        })
    }

    /// Opens an existing journal for appending, cutting off a torn last line first.
    pub(crate) fn reopen(path: &Path, replay: &Replay) -> Result<Journal, Error> {
        let open = || -> io::Result<File> {
            let file = OpenOptions::new().read(true).append(true).open(path)?;
            if replay.torn {
                let mut bytes = Vec::new();
                (&file).read_to_end(&mut bytes)?;
                let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                file.set_len(complete as u64)?;
                file.sync_data()?;
            }
            Ok(file)
        };
        let file =
            open().map_err(|e| Error::state(format_args!("open journal {}", path.display()), e))?;
        let next_id = replay
            .records
            .iter()
            .filter_map(|r| match r {
                Record::Intent { id, .. } => Some(*id),
                _ => None,
            })
            .max()
            .unwrap_or(0)
            + 1;
        Ok(Journal {
            file,
            path: path.to_owned(),
            next_id,
        })
    }

    /// Appends one record and fsyncs it.
    pub(crate) fn append(&mut self, record: &Record) -> Result<(), Error> {
        let mut line = serde_json::to_vec(record).expect("a journal record always serializes");
        line.push(b'\n');
        let before = self.file.metadata().map(|m| m.len());
        let result = self
            .file
            .write_all(&line)
            .and_then(|()| self.file.sync_data());
        if result.is_err()
            && let Ok(len) = before
        {
            // A full disk may have taken part of the line: cut it, so that a later append (once
            // there is space) does not glue its record onto a torn one.
            let _ = self.file.set_len(len);
        }
        result
            .map_err(|e| Error::state(format_args!("append to journal {}", self.path.display()), e))
    }

    /// A fresh intent id.
    pub(crate) fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_last_line_is_an_open_intent_and_is_cut_before_appending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let mut journal = Journal::create(&path).unwrap();
        journal
            .append(&Record::Intent {
                id: 1,
                op: Op::Reload,
            })
            .unwrap();
        journal.append(&Record::Done { id: 1 }).unwrap();
        journal
            .append(&Record::Closed {
                how: CloseReason::Reverted,
            })
            .unwrap();
        drop(journal);
        let replay = read(&path).unwrap();
        assert!(replay.closed().is_some());
        // A torn close record does not close the run.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate(bytes.len() - 5);
        std::fs::write(&path, &bytes).unwrap();
        let replay = read(&path).unwrap();
        assert!(replay.torn);
        assert!(replay.closed().is_none());
        let mut journal = Journal::reopen(&path, &replay).unwrap();
        assert_eq!(journal.next_id(), 2);
        journal.append(&Record::Done { id: 9 }).unwrap();
        let replay = read(&path).unwrap();
        assert!(!replay.torn);
        assert_eq!(replay.records.len(), 3);
    }

    #[test]
    fn an_intent_after_a_keep_reopens_the_run() {
        let replay = Replay {
            records: vec![
                Record::Kept { arm: "a".into() },
                Record::Intent {
                    id: 3,
                    op: Op::Reload,
                },
            ],
            torn: false,
        };
        assert!(replay.closed().is_none());
        assert_eq!(replay.pending(), Some(&Op::Reload));
    }
}
