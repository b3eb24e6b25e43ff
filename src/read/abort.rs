//! Aborting the mount's Hub requests when it is being unmounted.
//!
//! A reader blocked on a stalled Hub keeps its file open, which makes the unmount fail as
//! busy. Before unmounting, the daemon calls [`Abort::abort`]: every read fetch and metadata
//! call in flight ends at once with EIO (their futures are dropped, which closes the HTTP
//! requests), and new ones fail immediately, so readers get their error and let go of the
//! mount. If the unmount still fails (a shell sits in the mount), [`Abort::resume`] puts the
//! mount back in service.

use std::future::Future;

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

#[derive(Default)]
pub struct Abort {
    /// Cancelled while aborting; replaced by a fresh token on resume.
    token: Mutex<CancellationToken>,
}

impl Abort {
    /// Ends every call running under [`Abort::run`] and fails new ones until `resume`.
    pub fn abort(&self) {
        self.token.lock().cancel();
    }

    /// Lets Hub calls run again after an abort.
    pub fn resume(&self) {
        let mut token = self.token.lock();
        if token.is_cancelled() {
            *token = CancellationToken::new();
        }
    }

    pub fn is_aborted(&self) -> bool {
        self.token.lock().is_cancelled()
    }

    /// Runs `call` unless aborted first; `Err(aborted())` if an abort comes first.
    pub async fn run<T, E>(
        &self,
        call: impl Future<Output = Result<T, E>>,
        aborted: impl FnOnce() -> E,
    ) -> Result<T, E> {
        let token = self.token.lock().clone();
        tokio::select! {
            biased;
            _ = token.cancelled() => Err(aborted()),
            r = call => r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn abort_ends_calls_in_flight_and_new_ones_until_resumed() {
        let abort = std::sync::Arc::new(Abort::default());
        let stalled = {
            let abort = abort.clone();
            tokio::spawn(async move {
                abort
                    .run(
                        async {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            Ok::<_, &str>(1)
                        },
                        || "aborted",
                    )
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        abort.abort();
        let r = tokio::time::timeout(Duration::from_secs(5), stalled).await;
        assert_eq!(r.unwrap().unwrap(), Err("aborted"));
        assert!(abort.is_aborted());
        assert_eq!(
            abort.run(async { Ok(2) }, || "aborted").await,
            Err("aborted")
        );
        abort.resume();
        assert!(!abort.is_aborted());
        assert_eq!(abort.run(async { Ok(3) }, || "aborted").await, Ok(3));
    }
}
