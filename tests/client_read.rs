//! Read side of the client against the real `hub-emulator` binary: metadata calls, tree
//! pagination, file metadata, exact range reads, the CDN redirect and private repos.

mod common;

use std::time::Duration;

use common::*;
use hubfs::hub::{HubError, TreeOptions};
use hubfs::repo::RepoType;
use sha1::{Digest, Sha1};

fn git_blob_sha1(data: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(format!("blob {}\0", data.len()).as_bytes());
    h.update(data);
    hex::encode(h.finalize())
}

#[tokio::test]
async fn repo_info_refs_commits_and_listings() {
    let emu = Emulator::start(&[]);
    bounded(async {
        let fx = seed_fixture(&emu).await;
        let alice = emu.client(Some(ALICE));
        let anon = emu.client(None);

        let info = anon.repo_info(&fx.repo, None, false).await.unwrap();
        assert_eq!(info.id, "alice/fixture");
        assert_eq!(info.sha.as_deref(), Some(fx.commit.as_str()));
        assert!(!info.private);
        let names: Vec<String> = info
            .siblings
            .unwrap()
            .into_iter()
            .map(|s| s.rfilename)
            .collect();
        for (path, _) in &fx.files {
            assert!(names.contains(path), "{path} missing from siblings");
        }

        let info = anon
            .repo_info(&fx.repo, Some(&fx.commit), true)
            .await
            .unwrap();
        let siblings = info.siblings.unwrap();
        let weights = siblings
            .iter()
            .find(|s| s.rfilename == "weights.bin")
            .unwrap();
        let lfs = weights.lfs.as_ref().expect("weights.bin is LFS");
        assert_eq!(lfs.sha256, sha256_hex(fx.bytes("weights.bin")));
        assert_eq!(lfs.size, WEIGHTS_SIZE as u64);

        let e = anon
            .repo_info(&fx.repo, Some("no-such-branch"), false)
            .await
            .unwrap_err();
        assert!(matches!(e, HubError::RevisionNotFound { .. }), "{e}");
        let e = alice
            .repo_info(&model("alice/missing"), None, false)
            .await
            .unwrap_err();
        assert!(matches!(e, HubError::RepoNotFound { .. }), "{e}");

        alice
            .create_branch(&fx.repo, "feature/x", None)
            .await
            .unwrap();
        alice.create_tag(&fx.repo, "v1", "main").await.unwrap();
        let e = alice
            .create_branch(&fx.repo, "feature/x", None)
            .await
            .unwrap_err();
        assert!(matches!(e, HubError::AlreadyExists { .. }), "{e}");
        let refs = anon.list_refs(&fx.repo, true).await.unwrap();
        let branch = refs
            .branches
            .iter()
            .find(|b| b.name == "feature/x")
            .unwrap();
        assert_eq!(branch.target_commit, fx.commit);
        assert!(refs.tags.iter().any(|t| t.name == "v1"));
        assert!(refs.pull_requests.is_some());
        // The branch and the tag resolve like main.
        for rev in ["feature/x", "v1", &fx.commit[..7]] {
            let info = anon.repo_info(&fx.repo, Some(rev), false).await.unwrap();
            assert_eq!(info.sha.as_deref(), Some(fx.commit.as_str()), "{rev}");
        }

        let commits = anon.list_commits(&fx.repo, "main", 100).await.unwrap();
        assert!(commits.len() >= 2, "initial + seed commit");
        assert_eq!(commits[0].id, fx.commit);
        assert_eq!(
            anon.list_commits(&fx.repo, "main", 1).await.unwrap().len(),
            1
        );

        let repos = anon
            .list_repos(RepoType::Model, Some("alice"), None, usize::MAX)
            .await
            .unwrap();
        assert!(repos.iter().any(|r| r.id == "alice/fixture"));
        let found = anon
            .list_repos(RepoType::Model, None, Some("fixt"), 10)
            .await
            .unwrap();
        assert!(found.iter().any(|r| r.id == "alice/fixture"));

        let me = alice.whoami().await.unwrap();
        assert_eq!(me.name, "alice");
        assert_eq!(me.token_role(), Some("write"));
        let bob = emu.client(Some(BOB_READ)).whoami().await.unwrap();
        assert_eq!(bob.token_role(), Some("read"));
        let e = emu.client(Some("hf_wrong")).whoami().await.unwrap_err();
        assert_eq!(e, HubError::InvalidToken);
    })
    .await;
}

#[tokio::test]
async fn tree_pages_and_paths_info() {
    let emu = Emulator::start(&["--page-size", "10"]);
    bounded(async {
        let fx = seed_fixture(&emu).await;
        let c = emu.client(None);

        let mut pager = c.list_tree(&fx.repo, &fx.commit, "many", false);
        let mut pages = 0;
        let mut entries = Vec::new();
        while let Some(page) = pager.next_page().await.unwrap() {
            assert!(page.len() <= 10);
            pages += 1;
            entries.extend(page);
        }
        assert_eq!(pages, 3, "25 entries in pages of 10");
        assert_eq!(entries.len(), 25);
        assert!(entries.iter().all(|e| e.path.starts_with("many/file")));

        let all = c
            .list_tree(&fx.repo, "main", "", true)
            .collect_all()
            .await
            .unwrap();
        for (path, data) in &fx.files {
            let e = all
                .iter()
                .find(|e| &e.path == path)
                .unwrap_or_else(|| panic!("{path} missing from the recursive tree"));
            assert_eq!(e.content_size(), data.len() as u64, "{path}");
            assert!(!e.is_dir());
            if path == "weights.bin" {
                assert_eq!(e.lfs.as_ref().unwrap().oid, sha256_hex(data));
            } else {
                assert_eq!(e.oid, git_blob_sha1(data), "{path}");
            }
        }
        for dir in ["many", "deep/a/b", "dir with space", "unicode"] {
            assert!(
                all.iter().any(|e| e.path == dir && e.is_dir()),
                "{dir} directory missing"
            );
        }

        let top = c
            .list_tree(&fx.repo, "main", "", false)
            .collect_all()
            .await
            .unwrap();
        assert!(top.iter().all(|e| !e.path.contains('/')));
        let odd = c
            .list_tree(&fx.repo, "main", "dir with space", false)
            .collect_all()
            .await
            .unwrap();
        assert_eq!(odd[0].path, "dir with space/#hash%.txt");

        let expanded = c
            .list_tree_with(
                &fx.repo,
                "main",
                "deep/a/b/c/d",
                TreeOptions {
                    expand: true,
                    ..TreeOptions::default()
                },
            )
            .collect_all()
            .await
            .unwrap();
        assert!(expanded[0].last_commit.is_some());

        let e = c
            .list_tree(&fx.repo, "main", "no/such/dir", false)
            .collect_all()
            .await
            .unwrap_err();
        assert!(matches!(e, HubError::EntryNotFound { .. }), "{e}");

        // paths-info: existing files and dirs come back, missing ones are left out, and a
        // long list goes in batches.
        let mut paths: Vec<String> = vec![
            "config.json".into(),
            "many".into(),
            "unicode/\u{e9}t\u{e9}.txt".into(),
            "nope.txt".into(),
        ];
        paths.extend((0..1100).map(|i| format!("missing/{i}.txt")));
        let before = c.stats().requests;
        let info = c.paths_info(&fx.repo, "main", &paths).await.unwrap();
        assert_eq!(c.stats().requests - before, 3, "1104 paths = 3 batches");
        let mut got: Vec<&str> = info.iter().map(|e| e.path.as_str()).collect();
        got.sort();
        assert_eq!(got, ["config.json", "many", "unicode/\u{e9}t\u{e9}.txt"]);
        assert!(info.iter().find(|e| e.path == "many").unwrap().is_dir());
    })
    .await;
}

#[tokio::test]
async fn file_metadata_and_exact_ranges() {
    let emu = Emulator::start(&[]);
    bounded(async {
        let fx = seed_fixture(&emu).await;
        let c = emu.client(Some(ALICE));

        let m = c
            .file_metadata(&fx.repo, "main", "config.json")
            .await
            .unwrap();
        assert_eq!(m.commit, fx.commit);
        assert_eq!(m.etag, git_blob_sha1(fx.bytes("config.json")));
        assert_eq!(m.size, fx.bytes("config.json").len() as u64);
        assert!(!m.is_lfs);

        let m = c
            .file_metadata(&fx.repo, "main", "weights.bin")
            .await
            .unwrap();
        assert_eq!(m.commit, fx.commit);
        assert_eq!(m.etag, sha256_hex(fx.bytes("weights.bin")));
        assert_eq!(m.size, WEIGHTS_SIZE as u64);
        assert!(m.is_lfs);
        assert_eq!(
            m.location.port(),
            emu.cdn.port(),
            "LFS bytes come from the CDN"
        );

        let m = c
            .file_metadata(&fx.repo, "main", "empty.txt")
            .await
            .unwrap();
        assert_eq!(m.size, 0);
        let m = c
            .file_metadata(&fx.repo, &fx.commit, "dir with space/#hash%.txt")
            .await
            .unwrap();
        assert_eq!(m.size, 8);
        let e = c
            .file_metadata(&fx.repo, "main", "missing.txt")
            .await
            .unwrap_err();
        assert!(matches!(e, HubError::EntryNotFound { .. }), "{e}");
        let e = c
            .file_metadata(&fx.repo, "nope", "config.json")
            .await
            .unwrap_err();
        assert!(matches!(e, HubError::RevisionNotFound { .. }), "{e}");

        let n = WEIGHTS_SIZE as u64;
        let w = fx.bytes("weights.bin");
        let cases: &[(u64, u64)] = &[
            (0, 1),
            (0, 4096),
            (4095, 4097),
            (1_000_000, 1_065_536),
            (n - 10, n),
            (n - 10, n + 100),
            (0, n),
        ];
        for &(a, b) in cases {
            let got = c
                .read_range(&fx.repo, &fx.commit, "weights.bin", a, b)
                .await
                .unwrap();
            let end = b.min(n) as usize;
            assert_eq!(got.len(), end - a as usize, "[{a}, {b})");
            assert!(got[..] == w[a as usize..end], "bytes differ in [{a}, {b})");
        }
        for &(a, b) in &[(n, n + 10), (n + 100, n + 200)] {
            let got = c
                .read_range(&fx.repo, &fx.commit, "weights.bin", a, b)
                .await
                .unwrap();
            assert!(got.is_empty(), "[{a}, {b}) past EOF must be empty");
        }
        // Streaming: remaining counts down to zero, chunks concatenate to the range.
        let mut body = c
            .get_range(&fx.repo, &fx.commit, "weights.bin", 7, 2_000_007)
            .await
            .unwrap();
        assert_eq!(body.remaining(), 2_000_000);
        assert_eq!(body.total_size(), Some(n));
        let mut streamed = Vec::new();
        while let Some(chunk) = body.chunk().await.unwrap() {
            streamed.extend_from_slice(&chunk);
        }
        assert_eq!(body.remaining(), 0);
        assert!(streamed[..] == w[7..2_000_007]);

        for (path, data) in &fx.files {
            let len = data.len() as u64;
            let got = c
                .read_range(&fx.repo, &fx.commit, path, 0, len + 5)
                .await
                .unwrap();
            assert!(got[..] == data[..], "{path}");
            if len > 2 {
                let got = c
                    .read_range(&fx.repo, &fx.commit, path, 1, len - 1)
                    .await
                    .unwrap();
                assert!(got[..] == data[1..len as usize - 1], "{path} middle");
            }
        }
        assert!(c
            .read_range(&fx.repo, &fx.commit, "empty.txt", 0, 100)
            .await
            .unwrap()
            .is_empty());
        let e = c
            .read_range(&fx.repo, &fx.commit, "missing.bin", 0, 10)
            .await
            .unwrap_err();
        assert!(matches!(e, HubError::EntryNotFound { .. }), "{e}");
    })
    .await;
}

#[tokio::test]
async fn cdn_locations_are_remembered_and_renewed_after_expiry() {
    let emu = Emulator::start(&["--cdn-url-ttl", "1"]);
    bounded(async {
        let fx = seed_fixture(&emu).await;
        let c = emu.client(Some(ALICE));
        let w = fx.bytes("weights.bin");
        let got = c
            .read_range(&fx.repo, &fx.commit, "weights.bin", 0, 100)
            .await
            .unwrap();
        assert!(got[..] == w[..100]);
        tokio::time::sleep(Duration::from_millis(2500)).await;
        // The signed URL is dead by now: the read must still return the right bytes.
        let got = c
            .read_range(&fx.repo, &fx.commit, "weights.bin", 100, 200)
            .await
            .unwrap();
        assert!(got[..] == w[100..200]);
        assert_eq!(c.stats().errors, 0);
    })
    .await;

    // With a long-lived URL, repeated reads skip the Hub and only the CDN is asked.
    let emu = Emulator::start(&[]);
    bounded(async {
        let fx = seed_fixture(&emu).await;
        let c = emu.client(Some(ALICE));
        let w = fx.bytes("weights.bin");
        for i in 0..10u64 {
            let a = i * 100_000;
            let got = c
                .read_range(&fx.repo, &fx.commit, "weights.bin", a, a + 1000)
                .await
                .unwrap();
            assert!(got[..] == w[a as usize..a as usize + 1000]);
        }
        let s = c.stats();
        assert_eq!(s.location_hits, 9, "{s:?}");
        // 1 resolve + 10 CDN GETs.
        assert_eq!(s.requests, 11, "{s:?}");
        let stats = emu.stats().await;
        assert_eq!(stats["bytes_served"], 10_000, "no over-fetch: {stats}");
        assert_eq!(stats["resolve_requests"], 1, "{stats}");
        assert_eq!(stats["cdn_requests"], 10, "{stats}");
    })
    .await;
}

#[tokio::test]
async fn private_repos_need_the_right_token() {
    let emu = Emulator::start(&[]);
    bounded(async {
        let alice = emu.client(Some(ALICE));
        let repo = dataset("alice/secret");
        alice.create_repo(&repo, true).await.unwrap();
        let data = pattern(5000, 9);
        let done = upload_files(&alice, &repo, "main", &[("data.bin", data.clone())], None)
            .await
            .unwrap();

        let info = alice.repo_info(&repo, None, false).await.unwrap();
        assert!(info.private);
        let got = alice
            .read_range(&repo, &done.commit_oid, "data.bin", 0, 5000)
            .await
            .unwrap();
        assert!(got[..] == data[..]);

        let anon = emu.client(None);
        let e = anon.repo_info(&repo, None, false).await.unwrap_err();
        assert!(matches!(e, HubError::AuthRequired { .. }), "{e}");
        assert!(
            e.to_string().contains("HF_TOKEN"),
            "the message says what to do: {e}"
        );
        let e = anon
            .file_metadata(&repo, "main", "data.bin")
            .await
            .unwrap_err();
        assert!(matches!(e, HubError::AuthRequired { .. }), "{e}");
        let e = anon
            .read_range(&repo, &done.commit_oid, "data.bin", 0, 10)
            .await
            .unwrap_err();
        assert!(matches!(e, HubError::AuthRequired { .. }), "{e}");
        let e = anon
            .list_tree(&repo, "main", "", false)
            .collect_all()
            .await
            .unwrap_err();
        assert!(matches!(e, HubError::AuthRequired { .. }), "{e}");

        let bob = emu.client(Some(BOB_READ));
        let e = bob.repo_info(&repo, None, false).await.unwrap_err();
        assert!(matches!(e, HubError::RepoNotFound { .. }), "{e}");
        let e = bob
            .file_metadata(&repo, "main", "data.bin")
            .await
            .unwrap_err();
        assert!(e.is_not_found(), "{e}");

        let wrong = emu.client(Some("hf_not_a_token"));
        let e = wrong.repo_info(&repo, None, false).await.unwrap_err();
        assert_eq!(e, HubError::InvalidToken);
        assert!(!e.to_string().contains("hf_not_a_token"));
    })
    .await;
}
