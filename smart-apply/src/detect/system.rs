//! Reads what the kernel says about the machine, without running anything: a sysctl's value from
//! `/proc/sys`, the CPU count, and the memory from `/proc/meminfo`. The parsers are pure and
//! tested on text; the readers are thin.

use std::path::{Path, PathBuf};

/// Where the kernel publishes its sysctls.
pub const PROC_SYS: &str = "/proc/sys";

/// The CPUs and memory of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Machine {
    /// CPUs this process may run on (at least 1).
    pub cpus: u32,
    /// Total memory in bytes, when `/proc/meminfo` says.
    pub memory_bytes: Option<u64>,
}

impl Machine {
    /// Reads the CPU count (the scheduler's view, so a cgroup or affinity limit counts) and
    /// `/proc/meminfo`.
    pub fn read() -> Machine {
        let cpus = std::thread::available_parallelism()
            .map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX));
        let memory_bytes = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| parse_meminfo(&text));
        Machine { cpus, memory_bytes }
    }

    /// Total memory in MiB, when known.
    pub fn memory_mb(&self) -> Option<i64> {
        self.memory_bytes
            .map(|b| i64::try_from(b / (1024 * 1024)).unwrap_or(i64::MAX))
    }
}

/// `MemTotal` of `/proc/meminfo` text, in bytes.
pub fn parse_meminfo(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut words = line["MemTotal:".len()..].split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => value.checked_mul(1024),
        None => Some(value),
        Some(_) => None,
    }
}

/// The file under `proc_sys` that holds the sysctl `key` (`net.core.somaxconn` →
/// `net/core/somaxconn`), or `None` for a key that is not a plain dotted name.
pub fn sysctl_path(proc_sys: &Path, key: &str) -> Option<PathBuf> {
    let plain = !key.is_empty()
        && key.split('.').all(|part| {
            !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
    plain.then(|| proc_sys.join(key.replace('.', "/")))
}

/// The sysctl `key`'s current value, trimmed, read from `proc_sys` (normally [`PROC_SYS`]);
/// `None` when this kernel has no such sysctl or it cannot be read.
pub fn read_sysctl(proc_sys: &Path, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(sysctl_path(proc_sys, key)?).ok()?;
    Some(text.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_total_memory_from_meminfo() {
        let text = "MemTotal:        8039924 kB\nMemFree:          123 kB\n";
        assert_eq!(parse_meminfo(text), Some(8_039_924 * 1024));
        assert_eq!(parse_meminfo("MemFree: 1 kB\n"), None);
        assert_eq!(parse_meminfo("MemTotal: lots\n"), None);
        let machine = Machine {
            cpus: 2,
            memory_bytes: Some(8_039_924 * 1024),
        };
        assert_eq!(machine.memory_mb(), Some(7851));
    }

    #[test]
    fn maps_sysctl_keys_to_proc_sys_files_and_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            sysctl_path(dir.path(), "net.core.somaxconn").unwrap(),
            dir.path().join("net/core/somaxconn")
        );
        for bad in ["", "net..x", "../etc/passwd", "net/core", "a.b c"] {
            assert!(sysctl_path(dir.path(), bad).is_none(), "{bad}");
        }
        std::fs::create_dir_all(dir.path().join("net/core")).unwrap();
        std::fs::write(dir.path().join("net/core/somaxconn"), "4096\n").unwrap();
        assert_eq!(
            read_sysctl(dir.path(), "net.core.somaxconn").as_deref(),
            Some("4096")
        );
        assert_eq!(read_sysctl(dir.path(), "net.ipv4.tcp_fastopen"), None);
    }

    #[test]
    fn this_machine_has_a_cpu_and_a_somaxconn() {
        assert!(Machine::read().cpus >= 1);
        // Every Linux kernel smart supports has it.
        assert!(read_sysctl(Path::new(PROC_SYS), "net.core.somaxconn").is_some());
    }
}
