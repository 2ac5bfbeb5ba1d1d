//! CPU time and memory of the server processes, read from `/proc`, so the cost of a
//! journey can be stated in CPU milliseconds whatever else the machine is doing.

use std::path::Path;

use crate::config::ProcessSelection;
use crate::report::{rounded, ProcessUsage};

/// A process being measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Watched {
    pub(crate) pid: u32,
    pub(crate) name: String,
}

/// Errors finding or reading the processes to measure.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("process {pid}: cannot read /proc/{pid}: {source}")]
    Read { pid: u32, source: std::io::Error },
    #[error("process {pid}: unexpected /proc/{pid}/stat format")]
    Format { pid: u32 },
    #[error("no running process named {0:?}")]
    NotFound(String),
    #[error("cannot list /proc: {0}")]
    List(std::io::Error),
}

/// CPU time consumed so far (user + system, all threads).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CpuSample {
    pub(crate) cpu_secs: f64,
}

/// Memory as `/proc/<pid>/status` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Memory {
    /// Peak resident set size (`VmHWM`).
    pub(crate) peak_rss_kib: u64,
    /// Current resident set size (`VmRSS`).
    pub(crate) rss_kib: u64,
}

/// The measured processes' CPU counters as a window opened: closing it gives each one's
/// CPU over the window and its memory at the end.
#[derive(Debug)]
pub(crate) struct Window {
    watched: Vec<Watched>,
    cpu_before: Vec<CpuSample>,
}

impl Window {
    /// Reads every process's CPU so far: the window starts now. A process that cannot be
    /// read fails the run, before any load is measured.
    pub(crate) fn open(watched: Vec<Watched>) -> Result<Self, ProcessError> {
        let cpu_before = watched
            .iter()
            .map(|w| cpu(w.pid))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            watched,
            cpu_before,
        })
    }

    /// Each process's CPU since [`Window::open`] and its memory now; `None` figures for a
    /// process that exited meanwhile (the run's other figures still stand).
    pub(crate) fn close(&self) -> Vec<ProcessUsage> {
        self.watched
            .iter()
            .zip(&self.cpu_before)
            .map(|(w, before)| {
                let cpu_secs = cpu(w.pid)
                    .ok()
                    .map(|after| rounded((after.cpu_secs - before.cpu_secs).max(0.0), 3));
                let memory = memory(w.pid).ok();
                ProcessUsage {
                    pid: w.pid,
                    name: w.name.clone(),
                    cpu_secs,
                    peak_rss_kib: memory.map(|m| m.peak_rss_kib),
                    rss_kib: memory.map(|m| m.rss_kib),
                }
            })
            .collect()
    }
}

/// The processes named by `selection`: explicit pids (checked to exist) and every process
/// whose `comm` or argv 0 file name equals a given name, except this one.
pub(crate) fn select(selection: &ProcessSelection) -> Result<Vec<Watched>, ProcessError> {
    let proc_root = Path::new("/proc");
    let mut watched = Vec::new();
    for &pid in &selection.pids {
        let name = process_name(proc_root, pid)?;
        watched.push(Watched { pid, name });
    }
    if !selection.names.is_empty() {
        let own = std::process::id();
        let mut pids: Vec<u32> = std::fs::read_dir(proc_root)
            .map_err(ProcessError::List)?
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
            .filter(|pid| *pid != own)
            .collect();
        pids.sort_unstable();
        for wanted in &selection.names {
            let before = watched.len();
            for &pid in &pids {
                // Processes come and go while we scan: an unreadable one is not ours.
                let Ok(comm) = process_name(proc_root, pid) else {
                    continue;
                };
                let matches = comm == *wanted
                    || argv0_file_name(proc_root, pid).is_some_and(|argv0| argv0 == *wanted);
                if matches && !watched.iter().any(|w: &Watched| w.pid == pid) {
                    watched.push(Watched { pid, name: comm });
                }
            }
            if watched.len() == before {
                return Err(ProcessError::NotFound(wanted.clone()));
            }
        }
    }
    Ok(watched)
}

fn process_name(proc_root: &Path, pid: u32) -> Result<String, ProcessError> {
    std::fs::read_to_string(proc_root.join(pid.to_string()).join("comm"))
        .map(|s| s.trim_end().to_owned())
        .map_err(|source| ProcessError::Read { pid, source })
}

fn argv0_file_name(proc_root: &Path, pid: u32) -> Option<String> {
    let cmdline = std::fs::read(proc_root.join(pid.to_string()).join("cmdline")).ok()?;
    let argv0 = cmdline.split(|b| *b == 0).next()?;
    let argv0 = std::str::from_utf8(argv0).ok()?;
    Some(argv0.rsplit('/').next().unwrap_or(argv0).to_owned())
}

/// Clock ticks per second of `/proc/<pid>/stat` times (sysconf(_SC_CLK_TCK)).
fn clock_ticks_per_second() -> f64 {
    match rustix::param::clock_ticks_per_second() {
        0 => 100.0, // Linux's USER_HZ everywhere in practice, should the aux vector lack it.
        ticks => ticks as f64,
    }
}

/// utime + stime of `pid` so far.
pub(crate) fn cpu(pid: u32) -> Result<CpuSample, ProcessError> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|source| ProcessError::Read { pid, source })?;
    let ticks = cpu_ticks(&stat).ok_or(ProcessError::Format { pid })?;
    Ok(CpuSample {
        cpu_secs: ticks as f64 / clock_ticks_per_second(),
    })
}

/// utime (field 14) + stime (field 15) of a `/proc/<pid>/stat` line. The command name
/// (field 2) is in parentheses and may contain spaces, so fields are counted after it.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_ascii_whitespace().skip(11); // fields 3..=13
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// `VmHWM` and `VmRSS` of `pid`.
pub(crate) fn memory(pid: u32) -> Result<Memory, ProcessError> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|source| ProcessError::Read { pid, source })?;
    Ok(parse_memory(&status))
}

fn parse_memory(status: &str) -> Memory {
    let kib = |line: &str| -> u64 {
        line.split_ascii_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let mut memory = Memory::default();
    for line in status.lines() {
        if let Some(v) = line.strip_prefix("VmHWM:") {
            memory.peak_rss_kib = kib(v);
        } else if let Some(v) = line.strip_prefix("VmRSS:") {
            memory.rss_kib = kib(v);
        }
    }
    memory
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_counted_after_the_command_name() {
        let stat = "4242 (hub (worker) 1) S 1 4242 4242 0 -1 4194560 2911 0 0 0 150 37 0 0 20 0 9 0 12345 0 0";
        assert_eq!(cpu_ticks(stat), Some(187));
        assert_eq!(cpu_ticks("garbage"), None);
    }

    #[test]
    fn memory_comes_from_vmhwm_and_vmrss() {
        let status = "Name:\thub\nVmPeak:\t  900000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\n";
        assert_eq!(
            parse_memory(status),
            Memory {
                peak_rss_kib: 51200,
                rss_kib: 40960
            }
        );
    }

    #[test]
    fn this_process_can_be_measured() {
        let own = std::process::id();
        let watched = select(&ProcessSelection {
            pids: vec![own],
            names: vec![],
        })
        .unwrap();
        assert_eq!(watched.len(), 1);
        assert!(cpu(own).unwrap().cpu_secs >= 0.0);
        assert!(memory(own).unwrap().peak_rss_kib > 0);
        assert!(matches!(
            select(&ProcessSelection {
                pids: vec![],
                names: vec!["no-such-process-name-here".into()],
            }),
            Err(ProcessError::NotFound(_))
        ));
    }
}
