//! The readiness handshake between `hubfs mount` and the daemon it starts.
//!
//! `hubfs mount` creates a pipe and forks: the child becomes the daemon (new session, stdio
//! detached) and writes `ok` once the mount is live, or `error: <why>`, so the parent can exit
//! 0 only when the mount works and otherwise print the reason. A daemon that dies without a
//! word closes the pipe, which the parent reports too. Before its verdict the daemon may send
//! `notice: <text>` lines, which the parent prints on its stderr (e.g. why a branch mount is
//! read-only). Forking without exec saves starting the binary a second time (a few of the
//! milliseconds between `hubfs mount` and the first byte).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::notify::Notifier;

/// The daemon's end: says once whether the mount came up (to `hubfs mount`, and to systemd
/// when it started us with `Type=notify`).
pub struct ReadyPipe {
    pipe: Option<File>,
    /// systemd's notification socket (inert without `$NOTIFY_SOCKET`).
    pub systemd: Notifier,
}

impl ReadyPipe {
    pub fn none() -> ReadyPipe {
        ReadyPipe {
            pipe: None,
            systemd: Notifier::default(),
        }
    }

    /// A line for the user of `hubfs mount` (printed on its stderr), before the verdict.
    pub fn notice(&mut self, text: &str) {
        if let Some(f) = self.pipe.as_mut() {
            let _ = writeln!(f, "notice: {text}");
        }
    }

    pub fn ok(&mut self) {
        if let Some(mut f) = self.pipe.take() {
            let _ = f.write_all(b"ok\n");
        }
        self.systemd.notify("READY=1");
    }

    pub fn fail(&mut self, why: &str) {
        if let Some(mut f) = self.pipe.take() {
            let _ = writeln!(f, "error: {why}");
        }
        // systemd shows it with the unit's state (`systemctl status`).
        let line = why.lines().next().unwrap_or(why);
        self.systemd.notify(&format!("STATUS=mount failed: {line}"));
    }
}

impl Drop for ReadyPipe {
    /// A panic before the verdict still gets one, instead of the parent's guess that the
    /// daemon "exited before the mount was ready" (the panic message is in the log).
    fn drop(&mut self) {
        if self.pipe.is_some() && std::thread::panicking() {
            self.fail("internal error: the daemon panicked (its log has the message)");
        }
    }
}

/// Forks the daemon: in the child (new session, stdin/stdout on /dev/null, stderr to `log`)
/// runs `daemon` with the pipe's write end and exits with its status, never returning; in the
/// parent waits for the verdict: Ok(()) once the mount is live, Err(reason) otherwise.
///
/// # Safety
/// The process must have a single thread (call it before any runtime or thread starts): the
/// child is a copy of the process in which only the calling thread exists.
pub unsafe fn fork_daemon(log: File, daemon: impl FnOnce(ReadyPipe) -> bool) -> Result<(), String> {
    let devnull = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| format!("/dev/null: {e}"))?;
    let mut fds = [0i32; 2];
    // SAFETY: plain pipe creation; both fds are owned below.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: pipe2 just returned these fds to us.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: the caller guarantees a single thread, so the child's copy of the process is
    // consistent (no lock held by a thread that does not exist there).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!(
            "cannot start the daemon: {}",
            std::io::Error::last_os_error()
        ));
    }
    if pid == 0 {
        drop(read_end);
        // SAFETY: setsid/dup2 on fds this process owns; leaves the caller's session and
        // terminal, and keeps no pipe of the caller open (its stdout may be captured).
        unsafe {
            libc::setsid();
            libc::dup2(devnull.as_raw_fd(), 0);
            libc::dup2(devnull.as_raw_fd(), 1);
            libc::dup2(log.as_raw_fd(), 2);
        }
        drop(devnull);
        drop(log);
        let pipe = ReadyPipe {
            pipe: Some(File::from(write_end)),
            systemd: Notifier::default(),
        };
        // A panic must end the child here, never unwind into the caller's (the parent's) code.
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| daemon(pipe)));
        std::process::exit(if matches!(ok, Ok(true)) { 0 } else { 1 });
    }
    drop(write_end);
    drop(devnull);
    drop(log);
    let mut raw = Vec::new();
    let _ = File::from(read_end).read_to_end(&mut raw);
    let answer = String::from_utf8_lossy(&raw);
    let mut verdict = "";
    for line in answer.lines() {
        match line.strip_prefix("notice: ") {
            Some(text) => eprintln!("hubfs: {text}"),
            None => verdict = line.trim(),
        }
    }
    if verdict == "ok" {
        return Ok(());
    }
    // The daemon failed; reap it so no zombie is left behind.
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    match verdict.strip_prefix("error: ") {
        Some(why) => Err(why.to_string()),
        None => Err("the daemon exited before the mount was ready (see its log)".to_string()),
    }
}
