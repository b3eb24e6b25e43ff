//! systemd readiness (`sd_notify`): under a unit of `Type=notify`, systemd passes a datagram
//! socket in `$NOTIFY_SOCKET` and waits for `READY=1` before it considers the service started
//! (and before units ordered after it, e.g. a job reading the mount, start). A single datagram
//! send; no library needed.
//!
//! The variable is taken (read and removed) while the process still has a single thread, so
//! children (fusermount3) do not inherit it and talk to systemd in our name.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Where to tell systemd about our state; inert when not started by systemd.
#[derive(Debug, Default)]
pub struct Notifier {
    socket: Option<String>,
}

impl Notifier {
    /// Takes `$NOTIFY_SOCKET` from the environment.
    ///
    /// # Safety
    /// No other thread may read or change the environment meanwhile.
    pub unsafe fn from_env() -> Notifier {
        let socket = std::env::var("NOTIFY_SOCKET")
            .ok()
            .filter(|s| !s.is_empty());
        if socket.is_some() {
            // SAFETY: single thread, per this function's contract.
            unsafe { std::env::remove_var("NOTIFY_SOCKET") };
        }
        Notifier { socket }
    }

    /// Sends `state` (e.g. `READY=1`); failures are logged, never fatal: the mount works
    /// whether systemd heard or not.
    pub fn notify(&self, state: &str) {
        let Some(path) = &self.socket else { return };
        if let Err(e) = send(path, state) {
            tracing::warn!("telling systemd {state:?} through {path}: {e}");
        }
    }
}

fn send(path: &str, state: &str) -> std::io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    // '@' names a socket in the abstract namespace (systemd uses one for user managers).
    let addr = match path.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes())?,
        None => SocketAddr::from_pathname(path)?,
    };
    sock.send_to_addr(state.as_bytes(), &addr)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_reaches_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        let n = Notifier {
            socket: Some(path.to_str().unwrap().to_string()),
        };
        n.notify("READY=1");
        let mut buf = [0u8; 64];
        let len = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1");
    }

    #[test]
    fn abstract_sockets_work_and_no_socket_is_inert() {
        let name = format!("hubfs-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = UnixDatagram::bind_addr(&addr).unwrap();
        Notifier {
            socket: Some(format!("@{name}")),
        }
        .notify("READY=1");
        let mut buf = [0u8; 64];
        let len = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1");
        Notifier::default().notify("READY=1");
    }
}
