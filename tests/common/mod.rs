//! Shared harness of the `client_*` tests: a real `hub-emulator` process per test, clients for
//! its users, and an upload helper doing the full preupload → LFS → commit flow.

#![allow(dead_code)] // each test file uses a different part of the harness

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hubfs::hub::{
    preupload_file, CommitHeader, CommitOp, CommitResponse, HubClient, HubConfig, HubError,
    LfsObject, RetryPolicy, Token,
};
use hubfs::repo::{RepoId, RepoRef, RepoType};
use sha2::{Digest, Sha256};
use url::Url;

pub const ALICE: &str = "hf_alice_write";
pub const BOB_READ: &str = "hf_bob_read";

/// Every test body runs under this bound: a hang is a failure, not a stuck CI job.
pub const TEST_BOUND: Duration = Duration::from_secs(120);

/// Runs `fut` with [`TEST_BOUND`].
pub async fn bounded<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(TEST_BOUND, fut)
        .await
        .expect("test exceeded its time bound")
}

/// A running emulator, killed when dropped.
pub struct Emulator {
    child: Child,
    pub url: Url,
    pub cdn: Url,
    pub dir: tempfile::TempDir,
}

/// The `hub-emulator` binary: `$HUB_EMULATOR`, else the one built next to this test binary.
/// It is another crate of the workspace, so Cargo gives no `CARGO_BIN_EXE_` for it: a plain
/// `cargo test` at the root builds every default member (both binaries) before running tests.
pub fn emulator_binary() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("HUB_EMULATOR") {
        return p.into();
    }
    // target/<profile>/deps/<test binary> -> target/<profile>/hub-emulator
    let exe = std::env::current_exe().expect("current_exe");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("hub-emulator"))
        .expect("test binary has no target dir");
    assert!(
        bin.exists(),
        "{} not found: build it first (`cargo build --release` at the workspace root)",
        bin.display()
    );
    bin
}

impl Emulator {
    /// Starts `hub-emulator` on free loopback ports with users alice (write) and bob (read).
    pub fn start(extra: &[&str]) -> Emulator {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = std::fs::File::create(dir.path().join("emulator.log")).expect("log file");
        let mut child = Command::new(emulator_binary())
            .arg("--data")
            .arg(dir.path().join("data"))
            .args(["--listen", "127.0.0.1:0"])
            .args(["--token", &format!("alice:write:{ALICE}")])
            .args(["--token", &format!("bob:read:{BOB_READ}")])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn hub-emulator");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = tx.send(first);
            }
            // Keep draining so the emulator never blocks on a full pipe.
            for _ in lines {}
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let log =
                    std::fs::read_to_string(dir.path().join("emulator.log")).unwrap_or_default();
                panic!("hub-emulator did not start; log:\n{log}");
            }
        };
        let (url, cdn) = parse_ready_line(&line);
        Emulator {
            child,
            url,
            cdn,
            dir,
        }
    }

    /// A client with test-sized timeouts and fast retries.
    pub fn client(&self, token: Option<&str>) -> HubClient {
        HubClient::new(self.config(token)).expect("client")
    }

    pub fn config(&self, token: Option<&str>) -> HubConfig {
        let mut c = HubConfig::new(self.url.clone(), token.and_then(Token::new));
        c.connect_timeout = Duration::from_secs(2);
        c.read_idle_timeout = Duration::from_secs(2);
        c.api_timeout = Duration::from_secs(20);
        c.commit_timeout = Duration::from_secs(30);
        c.retry = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(500),
            max_retry_after: Duration::from_secs(2),
        };
        c
    }

    /// `GET /_emulator/stats` as JSON.
    pub async fn stats(&self) -> serde_json::Value {
        self.control("GET", "/_emulator/stats", None).await
    }

    /// Calls a control route (never faulted or counted by the emulator).
    pub async fn control(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
    ) -> serde_json::Value {
        let url = self.url.join(path).expect("control url");
        let http = reqwest::Client::new();
        let mut req = http.request(method.parse().expect("method"), url);
        if let Some(b) = body {
            req = req.body(b);
        }
        let resp = req
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .expect("control route");
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        let text = resp.text().await.expect("control body");
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `listening on http://H:P (cdn http://H:P2)` → (hub, cdn).
fn parse_ready_line(line: &str) -> (Url, Url) {
    let rest = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected ready line {line:?}"));
    let (hub, cdn) = match rest.split_once(" (cdn ") {
        Some((h, c)) => (h, c.trim_end_matches(')')),
        None => (rest, rest),
    };
    (
        Url::parse(hub.trim()).expect("hub url"),
        Url::parse(cdn.trim()).expect("cdn url"),
    )
}

pub fn model(id: &str) -> RepoRef {
    RepoRef::new(RepoType::Model, RepoId::parse(id).expect("repo id"))
}

pub fn dataset(id: &str) -> RepoRef {
    RepoRef::new(RepoType::Dataset, RepoId::parse(id).expect("repo id"))
}

/// Deterministic pseudo-random bytes (not compressible, not repetitive at block scale).
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Commits `files` to `revision` the way hubfs's staging will: preupload decides the mode,
/// LFS objects go through the batch API and are uploaded from files, then one commit.
pub async fn upload_files(
    client: &HubClient,
    repo: &RepoRef,
    revision: &str,
    files: &[(&str, Vec<u8>)],
    parent: Option<&str>,
) -> Result<CommitResponse, HubError> {
    let entries: Vec<_> = files
        .iter()
        .map(|(p, data)| preupload_file(p, data, data.len() as u64))
        .collect();
    let modes = client.preupload(repo, revision, &entries, false).await?;
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut ops = Vec::new();
    let mut lfs = Vec::new();
    for (path, data) in files {
        let answer = modes
            .files
            .iter()
            .find(|f| f.path == *path)
            .expect("preupload answers every path");
        if answer.upload_mode == "lfs" && !data.is_empty() {
            let oid = sha256_hex(data);
            let file = tmp.path().join(&oid);
            std::fs::write(&file, data).expect("stage file");
            lfs.push((oid.clone(), file));
            ops.push(CommitOp::AddLfs {
                path: path.to_string(),
                sha256: oid,
                size: data.len() as u64,
            });
        } else {
            ops.push(CommitOp::AddRegular {
                path: path.to_string(),
                content: data.clone(),
            });
        }
    }
    if !lfs.is_empty() {
        let objects: Vec<LfsObject> = lfs
            .iter()
            .map(|(oid, file)| LfsObject {
                oid: oid.clone(),
                size: std::fs::metadata(file).expect("stat").len(),
            })
            .collect();
        let batch = client.lfs_batch_upload(repo, revision, &objects).await?;
        let transfer = batch.transfer.clone().unwrap_or_else(|| "basic".into());
        for object in &batch.objects {
            let (_, file) = lfs
                .iter()
                .find(|(oid, _)| *oid == object.oid)
                .expect("batch answers every object");
            client
                .upload_lfs_object(object, &transfer, Path::new(file), None)
                .await?;
        }
    }
    let header = CommitHeader {
        summary: format!("Upload {} files", files.len()),
        description: String::new(),
        parent_commit: parent.map(str::to_string),
    };
    client.commit(repo, revision, header, ops, false).await
}

/// Files of the standard fixture repo.
pub struct Fixture {
    pub repo: RepoRef,
    pub files: Vec<(String, Vec<u8>)>,
    /// Commit of `main` after seeding.
    pub commit: String,
}

impl Fixture {
    pub fn bytes(&self, path: &str) -> &[u8] {
        &self
            .files
            .iter()
            .find(|(p, _)| p == path)
            .unwrap_or_else(|| panic!("no fixture file {path}"))
            .1
    }
}

/// Size of the fixture's LFS weights: a few MiB plus an odd tail, so reads cross many
/// chunk boundaries and EOF is not block-aligned.
pub const WEIGHTS_SIZE: usize = 3 * 1024 * 1024 + 12_345;

/// Creates `alice/fixture` with regular, LFS, empty, oddly named and many small files.
pub async fn seed_fixture(emu: &Emulator) -> Fixture {
    let alice = emu.client(Some(ALICE));
    let repo = model("alice/fixture");
    alice.create_repo(&repo, false).await.expect("create repo");
    let mut files: Vec<(String, Vec<u8>)> = vec![
        ("config.json".into(), br#"{"model_type":"test"}"#.to_vec()),
        ("weights.bin".into(), pattern(WEIGHTS_SIZE, 1)),
        ("empty.txt".into(), Vec::new()),
        ("dir with space/#hash%.txt".into(), b"odd name".to_vec()),
        (
            "unicode/\u{e9}t\u{e9}.txt".into(),
            "été".as_bytes().to_vec(),
        ),
        ("deep/a/b/c/d/leaf.txt".into(), b"leaf".to_vec()),
    ];
    for i in 0..25 {
        files.push((
            format!("many/file{i:02}.txt"),
            format!("file {i}\n").into_bytes(),
        ));
    }
    let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(p, d)| (p.as_str(), d.clone())).collect();
    let done = upload_files(&alice, &repo, "main", &refs, None)
        .await
        .expect("seed commit");
    Fixture {
        repo,
        files,
        commit: done.commit_oid,
    }
}
