//! The client under the emulator's fault injection: 5xx, 429, cut bodies and stalls must give
//! the right bytes or an error, always within a bounded time.

mod common;

use std::time::{Duration, Instant};

use common::*;
use hubfs::hub::{CommitHeader, CommitOp, HubClient, HubError};

/// Reads the fixture's weights in 256 KiB pieces and checks every byte.
async fn read_all_weights(c: &HubClient, fx: &Fixture) -> Result<(), HubError> {
    let w = fx.bytes("weights.bin");
    let step = 256 * 1024;
    let mut a = 0;
    while a < w.len() {
        let b = (a + step).min(w.len());
        let got = c
            .read_range(&fx.repo, &fx.commit, "weights.bin", a as u64, b as u64)
            .await?;
        assert!(got[..] == w[a..b], "bytes differ in [{a}, {b})");
        a = b;
    }
    Ok(())
}

/// A client that gives up on a silent server after 1 s (+1 s connect bound), 3 attempts.
fn quick_timeouts(emu: &Emulator) -> HubClient {
    let mut config = emu.config(Some(ALICE));
    config.connect_timeout = Duration::from_secs(1);
    config.read_idle_timeout = Duration::from_secs(1);
    config.retry.max_attempts = 3;
    HubClient::new(config).unwrap()
}

#[tokio::test]
async fn server_errors_and_rate_limits_are_retried() {
    let emu = Emulator::start(&[]);
    bounded(async {
        let fx = seed_fixture(&emu).await;
        emu.control(
            "POST",
            "/_emulator/faults",
            Some("route=content,every=3,status=503\nroute=cdn,every=7,status=429,retry-after=1\nroute=api,every=2,status=500".into()),
        )
        .await;
        let started = Instant::now();
        read_all_weights(&emu.client(Some(ALICE)), &fx).await.unwrap();
        let c = emu.client(None);
        let info = c.repo_info(&fx.repo, None, false).await.unwrap();
        assert_eq!(info.sha.as_deref(), Some(fx.commit.as_str()));
        let tree = c.list_tree(&fx.repo, "main", "many", false).collect_all().await.unwrap();
        assert_eq!(tree.len(), 25);
        assert!(started.elapsed() < Duration::from_secs(60));
    })
    .await;
}

#[tokio::test]
async fn cut_bodies_are_resumed() {
    let emu = Emulator::start(&[]);
    bounded(async {
        let fx = seed_fixture(&emu).await;
        emu.control(
            "POST",
            "/_emulator/faults",
            Some("route=cdn,every=2,cut-after=100000".into()),
        )
        .await;
        let c = emu.client(Some(ALICE));
        let w = fx.bytes("weights.bin");
        // Every second CDN answer is cut: of three whole-file reads at least one resumes.
        for _ in 0..3 {
            let got = c
                .read_range(&fx.repo, &fx.commit, "weights.bin", 0, w.len() as u64)
                .await
                .unwrap();
            assert!(got[..] == w[..]);
        }
        assert!(c.stats().retries >= 1, "a cut must have happened");

        // The streaming API reports the cut to its caller instead.
        let mut saw_cut = false;
        for _ in 0..4 {
            let mut body = c
                .get_range(&fx.repo, &fx.commit, "weights.bin", 0, 1_000_000)
                .await
                .unwrap();
            let mut n = 0usize;
            loop {
                match body.chunk().await {
                    Ok(Some(chunk)) => {
                        assert!(chunk[..] == w[n..n + chunk.len()]);
                        n += chunk.len();
                    }
                    Ok(None) => {
                        assert_eq!(n, 1_000_000);
                        break;
                    }
                    Err(e) => {
                        assert!(e.is_retryable(), "{e}");
                        assert!(n < 1_000_000);
                        saw_cut = true;
                        break;
                    }
                }
            }
        }
        assert!(saw_cut);
    })
    .await;
}

#[tokio::test]
async fn stalls_become_retries_or_bounded_errors() {
    let emu = Emulator::start(&[]);
    bounded(async {
        let fx = seed_fixture(&emu).await;
        // Occasional stalls: the idle timeout (2 s in tests) cuts them, the retry succeeds.
        emu.control(
            "POST",
            "/_emulator/faults",
            Some("route=cdn,every=4,stall=30".into()),
        )
        .await;
        let c = quick_timeouts(&emu);
        let started = Instant::now();
        read_all_weights(&c, &fx).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(60));
        assert!(c.stats().retries >= 1, "a stall must have happened");

        // A server that always stalls: an error, not a hang.
        emu.control("DELETE", "/_emulator/faults", None).await;
        emu.control(
            "POST",
            "/_emulator/faults",
            Some("route=content,every=1,stall=60".into()),
        )
        .await;
        let c = quick_timeouts(&emu);
        let started = Instant::now();
        let e = c
            .read_range(&fx.repo, &fx.commit, "config.json", 0, 10)
            .await
            .unwrap_err();
        assert!(matches!(e, HubError::Timeout { .. }), "{e}");
        // 3 attempts × (connect + idle) bound = 6 s, plus backoff; the stall is 60 s. The upper
        // bound tells the two apart with room for a loaded 2-core CI machine.
        let took = started.elapsed();
        assert!(took < Duration::from_secs(40), "{took:?}");
        assert!(took >= Duration::from_secs(2), "{took:?}");
    })
    .await;
}

#[tokio::test]
async fn an_ambiguous_commit_failure_is_not_retried() {
    let emu = Emulator::start(&[]);
    bounded(async {
        let fx = seed_fixture(&emu).await;
        let alice = emu.client(Some(ALICE));
        emu.control(
            "POST",
            "/_emulator/faults",
            Some("route=commit,times=1,status=500".into()),
        )
        .await;
        let header = CommitHeader {
            summary: "add note".into(),
            description: String::new(),
            parent_commit: Some(fx.commit.clone()),
        };
        let ops = vec![CommitOp::AddRegular {
            path: "note.txt".into(),
            content: b"note".to_vec(),
        }];
        let e = alice
            .commit(&fx.repo, "main", header.clone(), ops.clone(), false)
            .await
            .unwrap_err();
        assert!(matches!(e, HubError::CommitUnknown { .. }), "{e}");
        // The caller resolves it by reading the head: unchanged, so resend.
        let head = alice
            .repo_info(&fx.repo, Some("main"), false)
            .await
            .unwrap();
        assert_eq!(head.sha.as_deref(), Some(fx.commit.as_str()));
        let done = alice
            .commit(&fx.repo, "main", header, ops, false)
            .await
            .unwrap();
        assert_ne!(done.commit_oid, fx.commit);
    })
    .await;
}
