//! The control socket of a running mount: `hubfs status` (and later `sync`) talk to the daemon
//! through a Unix socket named after the mountpoint, one JSON request line, one JSON answer line.

use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

/// Directory of the control sockets of `uid`'s daemons: derived from the uid alone, never from
/// the environment, so `hubfs status` / `sync` from sudo, cron or another login (another
/// `XDG_RUNTIME_DIR`, or none) find the daemon. `/run/user/UID` is not used: logind removes it
/// at the user's last logout while the mount lives on.
pub fn socket_dir(uid: u32) -> PathBuf {
    if uid == 0 {
        PathBuf::from("/run/hubfs")
    } else {
        PathBuf::from(format!("/tmp/hubfs-{uid}"))
    }
}

/// The socket of `uid`'s mount at `mountpoint` (canonical path).
pub fn socket_path_of(uid: u32, mountpoint: &Path) -> PathBuf {
    let digest = Sha256::digest(mountpoint.as_os_str().as_encoded_bytes());
    socket_dir(uid).join(format!("{}.sock", &hex::encode(digest)[..20]))
}

/// The socket this process serves (or would) for the mount at `mountpoint`.
pub fn socket_path(mountpoint: &Path) -> PathBuf {
    // SAFETY: getuid cannot fail.
    socket_path_of(unsafe { libc::getuid() }, mountpoint)
}

/// Serves requests on the socket of `mountpoint` until the returned guard is dropped.
pub fn serve<H, F>(mountpoint: &Path, handler: H) -> std::io::Result<SocketGuard>
where
    H: Fn(Value) -> F + Send + Sync + 'static,
    F: Future<Output = Value> + Send + 'static,
{
    let path = socket_path(mountpoint);
    if let Some(dir) = path.parent() {
        // Private, ours: another user's directory (e.g. a planted /tmp/hubfs-UID) is refused.
        crate::private::secure_dir(dir, "control socket directory")
            .map_err(std::io::Error::other)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    let handler = Arc::new(handler);
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handler = handler.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut line = String::new();
                let mut reader = tokio::io::BufReader::new(read);
                if reader.read_line(&mut line).await.is_err() {
                    return;
                }
                let answer = match serde_json::from_str::<Value>(&line) {
                    Ok(req) => handler(req).await,
                    Err(e) => serde_json::json!({"error": format!("bad request: {e}")}),
                };
                let mut out = answer.to_string();
                out.push('\n');
                let _ = write.write_all(out.as_bytes()).await;
            });
        }
    });
    Ok(SocketGuard { path, task })
}

/// Removes the socket when the daemon stops.
pub struct SocketGuard {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Sends one request to the mount at `mountpoint` and returns its answer.
pub fn request(mountpoint: &Path, req: &Value, timeout: Duration) -> Result<Value, String> {
    let canonical = mountpoint
        .canonicalize()
        .map_err(|e| format!("{}: {e}", mountpoint.display()))?;
    // The daemon runs as the user who mounted (the kernel records it), maybe not us (sudo).
    // SAFETY: getuid cannot fail.
    let me = unsafe { libc::getuid() };
    let owner = super::mounts::find(&canonical).map_or(me, |m| m.user_id);
    if owner != me && me != 0 {
        return Err(format!(
            "{} is mounted by uid {owner}: only that user or root can ask its daemon",
            mountpoint.display()
        ));
    }
    let path = socket_path_of(owner, &canonical);
    check_socket_dir_owner(&path, owner)?;
    let mut stream = std::os::unix::net::UnixStream::connect(&path).map_err(|e| {
        format!(
            "{} is not a running hubfs mount ({}: {e})",
            mountpoint.display(),
            path.display()
        )
    })?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|_| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| e.to_string())?;
    let mut line = req.to_string();
    line.push('\n');
    stream
        .write_all(line.as_bytes())
        .map_err(|e| format!("sending to the daemon: {e}"))?;
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .map_err(|e| format!("waiting for the daemon: {e}"))?;
    serde_json::from_str(&answer).map_err(|e| format!("bad answer from the daemon: {e}"))
}

/// A socket directory of `owner` that someone else made (e.g. planted in /tmp before the
/// owner's first mount) could answer in the daemon's name: refused.
fn check_socket_dir_owner(socket: &Path, owner: u32) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let Some(dir) = socket.parent() else {
        return Ok(());
    };
    match std::fs::symlink_metadata(dir) {
        Ok(meta) if meta.uid() != owner => Err(format!(
            "control socket directory {} belongs to uid {}, not to the mount's user (uid \
             {owner}): refusing to talk through it",
            dir.display(),
            meta.uid()
        )),
        // Missing: the connect below says the mount has no daemon.
        _ => Ok(()),
    }
}
