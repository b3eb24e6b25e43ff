//! The readiness handshake between `hubfs mount` and the daemon it starts.
//!
//! The parent creates a pipe and starts itself again with `--foreground`, handing the write end
//! over as `HUBFS_READY_FD`. The daemon writes `ok` once the mount is live, or `error: <why>`,
//! so the parent can exit 0 only when the mount works and otherwise print the reason. A daemon
//! that dies without a word closes the pipe, which the parent reports too. Before its verdict
//! the daemon may send `notice: <text>` lines, which the parent prints on its stderr (e.g. why
//! a branch mount is read-only).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

pub const READY_FD_ENV: &str = "HUBFS_READY_FD";

/// The daemon's end: says once whether the mount came up.
pub struct ReadyPipe(Option<File>);

impl ReadyPipe {
    /// Takes the pipe handed over by a parent `hubfs mount`, if any.
    pub fn from_env() -> ReadyPipe {
        let fd = std::env::var(READY_FD_ENV)
            .ok()
            .and_then(|v| v.parse::<i32>().ok());
        std::env::remove_var(READY_FD_ENV);
        // SAFETY: the parent created this fd for us and nothing else in the process owns it.
        ReadyPipe(
            fd.filter(|fd| *fd > 2)
                .map(|fd| unsafe { File::from_raw_fd(fd) }),
        )
    }

    pub fn none() -> ReadyPipe {
        ReadyPipe(None)
    }

    /// A line for the user of `hubfs mount` (printed on its stderr), before the verdict.
    pub fn notice(&mut self, text: &str) {
        if let Some(f) = self.0.as_mut() {
            let _ = writeln!(f, "notice: {text}");
        }
    }

    pub fn ok(&mut self) {
        if let Some(mut f) = self.0.take() {
            let _ = f.write_all(b"ok\n");
        }
    }

    pub fn fail(&mut self, why: &str) {
        if let Some(mut f) = self.0.take() {
            let _ = writeln!(f, "error: {why}");
        }
    }
}

/// Starts `cmd` as a detached daemon (new session, stdin/stdout on /dev/null, stderr to `log`)
/// and waits for its verdict. Ok(()) once the mount is live; Err(reason) otherwise.
pub fn spawn_daemon(mut cmd: Command, log: File) -> Result<(), String> {
    let mut fds = [0i32; 2];
    // SAFETY: plain pipe creation; both fds are owned below.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: pipe2 just returned these fds to us.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let write_raw = write_end.into_raw_fd();
    cmd.env(READY_FD_ENV, write_raw.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // Keep the write end open across exec and leave the caller's session and terminal.
            if libc::fcntl(write_raw, libc::F_SETFD, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::setsid();
            Ok(())
        });
    }
    let spawned = cmd.spawn();
    // SAFETY: we own write_raw; the child has its own copy now.
    drop(unsafe { OwnedFd::from_raw_fd(write_raw) });
    let mut child = spawned.map_err(|e| format!("cannot start the daemon: {e}"))?;
    let mut answer = String::new();
    let _ = File::from(read_end).read_to_string(&mut answer);
    let mut verdict = "";
    for line in answer.lines() {
        match line.strip_prefix("notice: ") {
            Some(text) => eprintln!("hubfs: {text}"),
            None => verdict = line.trim(),
        }
    }
    let answer = verdict;
    if answer == "ok" {
        return Ok(());
    }
    // The daemon failed; reap it so no zombie is left behind.
    let _ = child.wait();
    match answer.strip_prefix("error: ") {
        Some(why) => Err(why.to_string()),
        None => Err("the daemon exited before the mount was ready (see its log)".to_string()),
    }
}
