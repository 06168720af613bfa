//! The load monitor (`-U`, lvs.cf `load_monitor`): asks the real server for its 1-minute load
//! average so the health core can scale the weight ([`crate::health::load_adjusted_weight`]).
//!
//! | `-U` | command run |
//! |---|---|
//! | `none` (or absent) | nothing |
//! | `rsh`, `ssh` (also with a path or options; lvsd passes `rsh_command` for `uptime`) | `CMD RIP uptime` |
//! | `uptime` (by hand) | as `rsh` (lvsd would have substituted `rsh_command`) |
//! | `rup`, `ruptime`, any other program | `CMD RIP` |
//!
//! The program is looked up once at start-up; if it is missing nanny logs one error
//! ("load_monitor: rup not found in PATH; weights stay as configured") and runs without load
//! monitoring. Each query runs with the probe timeout and is killed at it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::probe::ChildSlot;
use crate::probe::program::{RunError, describe_status, run_captured};
use crate::text::{LoadParseError, parse_load};

/// Why the load monitor cannot be used at all.
#[derive(Debug, thiserror::Error)]
pub enum LoadSetupError {
    /// The program is not in PATH / not executable.
    #[error("load_monitor: {program} not found in PATH; weights stay as configured")]
    NotFound {
        /// The program name.
        program: String,
    },
}

/// Why one load query gave no figure.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The command could not run, timed out or failed.
    #[error("failed to read remote load: {command}: {detail}")]
    Command {
        /// The command line.
        command: String,
        /// What went wrong.
        detail: String,
    },
    /// Its output held no load figure.
    #[error("{source}: {command} printed {output:?}")]
    Parse {
        /// The command line.
        command: String,
        /// Piranha's message.
        source: LoadParseError,
        /// The output.
        output: String,
    },
}

/// A usable load monitor.
#[derive(Debug, Clone)]
pub struct LoadMonitor {
    argv: Vec<String>,
}

impl LoadMonitor {
    /// Builds the command for `spec` (the `-U` value) and server `rip`. `Ok(None)` for `none`.
    pub fn new(spec: &str, rip: &str) -> Result<Option<Self>, LoadSetupError> {
        let mut argv: Vec<String> = spec.split_whitespace().map(str::to_owned).collect();
        let Some(program) = argv.first().cloned() else {
            return Ok(None);
        };
        if program == "none" {
            return Ok(None);
        }
        let base = Path::new(&program)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(&program)
            .to_owned();
        if base == "uptime" {
            argv = vec!["rsh".to_owned()];
        }
        let remote_shell = matches!(base.as_str(), "rsh" | "ssh" | "uptime");
        if find_program(&argv[0]).is_none() {
            return Err(LoadSetupError::NotFound {
                program: argv[0].clone(),
            });
        }
        argv.push(rip.to_owned());
        if remote_shell {
            argv.push("uptime".to_owned());
        }
        Ok(Some(Self { argv }))
    }

    /// The command line, for messages.
    pub fn command(&self) -> String {
        self.argv.join(" ")
    }

    /// Runs the command once and reads the 1-minute load.
    pub fn query(&self, timeout: Duration, slot: &ChildSlot) -> Result<f64, LoadError> {
        let command = self.command();
        let out = run_captured(&self.argv, timeout, slot).map_err(|e| LoadError::Command {
            command: command.clone(),
            detail: match e {
                RunError::Spawn(e) => e.to_string(),
                RunError::Timeout => format!("killed after {timeout:?}"),
            },
        })?;
        if !out.status.success() {
            return Err(LoadError::Command {
                command,
                detail: describe_status(out.status),
            });
        }
        let output = String::from_utf8_lossy(&out.stdout).into_owned();
        parse_load(&output).map_err(|source| LoadError::Parse {
            command,
            source,
            output,
        })
    }
}

/// Finds `program` like `execvp`: a name with a `/` as is, otherwise in `PATH`; it must be an
/// executable file.
pub fn find_program(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = PathBuf::from(program);
        return executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_and_missing() {
        assert!(
            LoadMonitor::new("none", "10.0.0.1")
                .expect("none")
                .is_none()
        );
        assert!(LoadMonitor::new("", "10.0.0.1").expect("empty").is_none());
        let e = LoadMonitor::new("no-such-rup-xyz", "10.0.0.1").expect_err("missing");
        assert_eq!(
            e.to_string(),
            "load_monitor: no-such-rup-xyz not found in PATH; weights stay as configured"
        );
    }

    #[test]
    fn commands() {
        // `sh` stands in for an installed program.
        let m = LoadMonitor::new("sh", "10.0.0.1")
            .expect("sh")
            .expect("some");
        assert_eq!(m.command(), "sh 10.0.0.1");
        assert!(find_program("sh").is_some());
        assert!(find_program("/nonexistent/rsh").is_none());
    }

    #[test]
    fn query_reads_the_load_and_reports_failures() {
        let dir = tempfile::tempdir().expect("tempdir");
        let script = dir.path().join("fake-rup");
        std::fs::write(
            &script,
            "#!/bin/sh\necho \"$1  up 1 day,  load average: 0.25, 0.10, 0.05\"\n",
        )
        .expect("write");
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let spec = script.display().to_string();
        let m = LoadMonitor::new(&spec, "10.0.0.1")
            .expect("found")
            .expect("some");
        let slot = ChildSlot::default();
        assert_eq!(m.query(Duration::from_secs(5), &slot).expect("load"), 0.25);
        let bad = LoadMonitor::new("true", "x").expect("true").expect("some");
        let e = bad
            .query(Duration::from_secs(5), &slot)
            .expect_err("no output");
        assert!(
            e.to_string().starts_with("failed to read remote load"),
            "{e}"
        );
    }
}
