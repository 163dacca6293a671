//! Reads a PostgreSQL cluster's configuration from its files on disk, read-only: the settings
//! `postgresql.conf` and the files of its `include_dir` write, where the cluster's drop-in
//! directory is, and (for Debian's `/etc/postgresql/VERSION/CLUSTER/` layout) the cluster's
//! systemd unit. No connection and no credentials: what the files say is what a reload would
//! apply; a value set with `ALTER SYSTEM` (in `postgresql.auto.conf`, in the data directory) is
//! not seen here, and the experiments `smart init --detect` writes refuse to switch while one
//! overrides their file (their `apply.validate`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where Debian keeps its clusters' configuration: `/etc/postgresql/VERSION/CLUSTER/`.
pub const DEBIAN_ROOT: &str = "/etc/postgresql";

/// What the configuration files of one cluster say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgConfig {
    /// The main file (`postgresql.conf`).
    pub file: PathBuf,
    /// Every setting the files make, by lower-case name: the value as written (unquoted), the
    /// last one read winning as in PostgreSQL.
    pub settings: BTreeMap<String, String>,
    /// The main file's `include_dir`, absolute, when it has one: a `*.conf` file there is read
    /// after `postgresql.conf`.
    pub include_dir: Option<PathBuf>,
    /// `(version, cluster)` when the file sits in Debian's layout (`/etc/postgresql/15/main/`)
    /// or says so in Debian's `cluster_name = '15/main'`.
    pub cluster: Option<(String, String)>,
}

impl PgConfig {
    /// The systemd unit of a Debian cluster (`postgresql@15-main`), restarted for settings that
    /// take effect only at start.
    pub fn unit(&self) -> Option<String> {
        self.cluster
            .as_ref()
            .map(|(version, name)| format!("postgresql@{version}-{name}"))
    }
}

/// Why a PostgreSQL configuration could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {}: {source}; name a readable postgresql.conf with --postgres-config PATH", path.display())]
pub struct PgConfigError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

/// The `postgresql.conf` of the newest cluster under `root` (normally [`DEBIAN_ROOT`]): the
/// highest version, then the first cluster name; `None` when there is none.
pub fn find_conf(root: &Path) -> Option<PathBuf> {
    let mut found: Vec<(u32, String, PathBuf)> = Vec::new();
    for version in std::fs::read_dir(root).ok()?.flatten() {
        let Some(number) = version.file_name().to_str().and_then(|v| v.parse().ok()) else {
            continue;
        };
        for cluster in std::fs::read_dir(version.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let conf = cluster.path().join("postgresql.conf");
            if conf.is_file() {
                let name = cluster.file_name().to_string_lossy().into_owned();
                found.push((number, name, conf));
            }
        }
    }
    found.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    found.into_iter().next().map(|(_, _, conf)| conf)
}

/// Reads `file` and the `*.conf` files of its `include_dir` (in name order, as PostgreSQL does).
pub fn read_conf(file: &Path) -> Result<PgConfig, PgConfigError> {
    let text = std::fs::read_to_string(file).map_err(|source| PgConfigError {
        path: file.to_owned(),
        source,
    })?;
    let mut config = parse_conf(file, &text);
    if let Some(dir) = &config.include_dir {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|e| e == "conf")
                    && !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        files.sort();
        for path in files {
            if let Ok(text) = std::fs::read_to_string(&path) {
                for (name, value) in settings(&text) {
                    config.settings.insert(name, value);
                }
            }
        }
    }
    Ok(config)
}

/// Reads the text of the main file `file` (pure: its `include_dir` is not read).
pub fn parse_conf(file: &Path, text: &str) -> PgConfig {
    let mut include_dir = None;
    let mut map = BTreeMap::new();
    let base = file.parent().unwrap_or(Path::new("/"));
    for (name, value) in settings(text) {
        if name == "include_dir" {
            include_dir = Some(base.join(&value));
        } else {
            map.insert(name, value);
        }
    }
    let cluster = debian_cluster(file).or_else(|| {
        // Debian's pg_createcluster writes `cluster_name = 'VERSION/NAME'`.
        let (version, name) = map.get("cluster_name")?.split_once('/')?;
        version.parse::<u32>().ok()?;
        (!name.is_empty() && !name.contains('/')).then(|| (version.to_owned(), name.to_owned()))
    });
    PgConfig {
        file: file.to_owned(),
        settings: map,
        include_dir,
        cluster,
    }
}

/// `(version, cluster)` of a file at `/etc/postgresql/VERSION/CLUSTER/postgresql.conf`.
fn debian_cluster(file: &Path) -> Option<(String, String)> {
    let dir = file.parent()?;
    let version = dir.parent()?;
    if version.parent()? != Path::new(DEBIAN_ROOT) {
        return None;
    }
    let number = version.file_name()?.to_str()?;
    number.parse::<u32>().ok()?;
    Some((number.to_owned(), dir.file_name()?.to_str()?.to_owned()))
}

/// `(name, value)` of every setting line, in order: `name = value` or `name value`, the value
/// quoted (`'...'`, `''` or `\'` for a quote) or a bare word, `#` starting a comment.
fn settings(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        let name_len = line
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(line.len());
        if name_len == 0 {
            continue;
        }
        let name = line[..name_len].to_ascii_lowercase();
        let rest = line[name_len..].trim_start();
        let rest = rest.strip_prefix('=').unwrap_or(rest).trim_start();
        let value = if let Some(quoted) = rest.strip_prefix('\'') {
            let mut value = String::new();
            let mut chars = quoted.chars().peekable();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '\'' if chars.peek() == Some(&'\'') => {
                        chars.next();
                        value.push('\'');
                    }
                    '\'' => {
                        closed = true;
                        break;
                    }
                    other => value.push(other),
                }
            }
            if !closed {
                continue;
            }
            value
        } else {
            let word: String = rest
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '#')
                .collect();
            if word.is_empty() {
                continue;
            }
            word
        };
        out.push((name, value));
    }
    out
}

/// A memory setting in MiB: `128MB`, `1GB`, `4096kB`, or a bare number in the setting's own
/// unit of `unit_kb` kilobytes (8 for `shared_buffers`' pages, 1 for `work_mem`); `None` for
/// anything else (`-1`, a typo), or below 1 MiB.
pub fn memory_mb(value: &str, unit_kb: i64) -> Option<i64> {
    let value = value.trim();
    let digits = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let number: i64 = value[..digits].parse().ok()?;
    let kb = match value[digits..].trim() {
        "" => number.checked_mul(unit_kb)?,
        "kB" => number,
        "MB" => number.checked_mul(1024)?,
        "GB" => number.checked_mul(1024 * 1024)?,
        "TB" => number.checked_mul(1024 * 1024 * 1024)?,
        _ => return None,
    };
    let mb = kb / 1024;
    (mb >= 1).then_some(mb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_debians_postgresql_conf() {
        let file = Path::new("/etc/postgresql/15/main/postgresql.conf");
        let text = "\
# comment
data_directory = '/var/lib/postgresql/15/main'\t\t# use data in another directory
max_connections = 100\t\t\t# (change requires restart)
shared_buffers = 128MB\t\t\t# min 128kB
#work_mem = 4MB\t\t\t\t# min 64kB
random_page_cost 1.5
log_line_prefix = '%m [%p] it''s %q%u@%d '
include_dir = 'conf.d'\t\t\t# include files ending in '.conf' from
";
        let config = parse_conf(file, text);
        assert_eq!(config.settings["shared_buffers"], "128MB");
        assert_eq!(config.settings["random_page_cost"], "1.5");
        assert_eq!(config.settings["log_line_prefix"], "%m [%p] it's %q%u@%d ");
        assert!(!config.settings.contains_key("work_mem"));
        assert_eq!(
            config.include_dir.as_deref(),
            Some(Path::new("/etc/postgresql/15/main/conf.d"))
        );
        assert_eq!(config.unit().as_deref(), Some("postgresql@15-main"));
        // Outside Debian's layout only Debian's cluster_name names the unit.
        assert_eq!(
            parse_conf(Path::new("/srv/pg/postgresql.conf"), text).unit(),
            None
        );
        let named = format!("{text}cluster_name = '16/web'\n");
        assert_eq!(
            parse_conf(Path::new("/srv/pg/postgresql.conf"), &named)
                .unit()
                .as_deref(),
            Some("postgresql@16-web")
        );
    }

    #[test]
    fn include_dir_files_override_and_the_newest_cluster_is_found() {
        let root = tempfile::tempdir().unwrap();
        for version in ["13", "15"] {
            let dir = root.path().join(version).join("main");
            std::fs::create_dir_all(dir.join("conf.d")).unwrap();
            std::fs::write(
                dir.join("postgresql.conf"),
                "work_mem = 4MB\ninclude_dir = 'conf.d'\n",
            )
            .unwrap();
        }
        std::fs::create_dir_all(root.path().join("notes")).unwrap();
        let conf = find_conf(root.path()).unwrap();
        assert_eq!(conf, root.path().join("15/main/postgresql.conf"));
        let drop_in = root.path().join("15/main/conf.d");
        std::fs::write(drop_in.join("tune.conf"), "work_mem = '16MB'\n").unwrap();
        std::fs::write(drop_in.join("tune.conf.off"), "work_mem = '99MB'\n").unwrap();
        let config = read_conf(&conf).unwrap();
        assert_eq!(config.settings["work_mem"], "16MB");
        assert!(find_conf(&root.path().join("none")).is_none());
        let err = read_conf(&root.path().join("none.conf")).unwrap_err();
        assert!(err.to_string().contains("--postgres-config"), "{err}");
    }

    #[test]
    fn memory_settings_in_mib() {
        for (value, unit_kb, mb) in [
            ("128MB", 8, Some(128)),
            ("1GB", 8, Some(1024)),
            ("16384", 8, Some(128)),
            ("4096kB", 1, Some(4)),
            ("4096", 1, Some(4)),
            ("64kB", 1, None),
            ("-1", 1, None),
            ("4 MB", 1, Some(4)),
            ("4XB", 1, None),
        ] {
            assert_eq!(memory_mb(value, unit_kb), mb, "{value}");
        }
    }
}
