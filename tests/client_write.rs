//! Write side of the client against the real `hub-emulator`: preupload, basic and multipart
//! LFS uploads, commits of every op kind, 412 on a stale parent, pull requests, branches,
//! tags and repos.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::*;
use hubfs::hub::{preupload_file, CommitHeader, CommitOp, HubError, LfsObject};

fn header(summary: &str, parent: Option<&str>) -> CommitHeader {
    CommitHeader {
        summary: summary.into(),
        description: "from the client tests".into(),
        parent_commit: parent.map(str::to_string),
    }
}

#[tokio::test]
async fn preupload_decides_modes_and_reports_existing_oids() {
    let emu = Emulator::start(&["--lfs-threshold", "1M"]);
    bounded(async {
        let fx = seed_fixture(&emu).await;
        let alice = emu.client(Some(ALICE));
        let big = pattern(2 * 1024 * 1024, 3);
        let files = vec![
            preupload_file("notes.txt", b"hello", 5),
            preupload_file("model.safetensors", b"x", 1),
            preupload_file("big.dat", &big, big.len() as u64),
            preupload_file("config.json", fx.bytes("config.json"), 21),
            preupload_file(
                "weights.bin",
                &fx.bytes("weights.bin")[..512],
                WEIGHTS_SIZE as u64,
            ),
        ];
        let r = alice
            .preupload(&fx.repo, "main", &files, false)
            .await
            .unwrap();
        let mode = |p: &str| {
            r.files
                .iter()
                .find(|f| f.path == p)
                .unwrap_or_else(|| panic!("no answer for {p}"))
                .clone()
        };
        assert_eq!(mode("notes.txt").upload_mode, "regular");
        assert_eq!(
            mode("model.safetensors").upload_mode,
            "lfs",
            ".gitattributes rule"
        );
        assert_eq!(mode("big.dat").upload_mode, "lfs", "size threshold");
        assert!(mode("notes.txt").oid.is_none());
        assert!(
            mode("config.json").oid.is_some(),
            "existing file reports its oid"
        );
        assert_eq!(
            mode("weights.bin").oid.as_deref(),
            Some(sha256_hex(fx.bytes("weights.bin")).as_str())
        );
        assert!(r.files.iter().all(|f| !f.should_ignore));
        assert_eq!(r.commit_oid.as_deref(), Some(fx.commit.as_str()));

        let e = emu
            .client(Some(BOB_READ))
            .commit(
                &fx.repo,
                "main",
                header("not allowed", None),
                vec![CommitOp::DeleteFile {
                    path: "config.json".into(),
                }],
                false,
            )
            .await
            .unwrap_err();
        assert!(matches!(e, HubError::Forbidden { .. }), "{e}");
    })
    .await;
}

#[tokio::test]
async fn basic_and_multipart_uploads_round_trip() {
    let emu = Emulator::start(&[
        "--multipart-threshold",
        "1M",
        "--multipart-part-size",
        "256K",
    ]);
    bounded(async {
        let alice = emu.client(Some(ALICE));
        let repo = model("alice/uploads");
        let url = alice.create_repo(&repo, false).await.unwrap();
        assert!(url.ends_with("/alice/uploads"), "{url}");

        let small = pattern(300_000, 5); // basic
        let big = pattern(1_300_000, 6); // multipart: 6 parts of 256 KiB
        let dir = tempfile::tempdir().unwrap();
        let mut objects = Vec::new();
        for (name, data) in [("small.bin", &small), ("big.bin", &big)] {
            std::fs::write(dir.path().join(name), data).unwrap();
            objects.push(LfsObject {
                oid: sha256_hex(data),
                size: data.len() as u64,
            });
        }
        let batch = alice
            .lfs_batch_upload(&repo, "main", &objects)
            .await
            .unwrap();
        let transfer = batch.transfer.clone().unwrap_or_else(|| "basic".into());
        let progress = Arc::new(AtomicU64::new(0));
        for (object, name) in batch.objects.iter().zip(["small.bin", "big.bin"]) {
            assert_eq!(
                object.oid,
                sha256_hex(if name == "small.bin" { &small } else { &big })
            );
            let upload = object.actions.as_ref().unwrap().upload.as_ref().unwrap();
            assert_eq!(
                upload.header.contains_key("chunk_size"),
                name == "big.bin",
                "{name}: multipart only above the threshold"
            );
            let p = Arc::clone(&progress);
            alice
                .upload_lfs_object(
                    object,
                    &transfer,
                    &dir.path().join(name),
                    Some(Arc::new(move |n| p.store(n, Ordering::SeqCst))),
                )
                .await
                .unwrap();
            assert_eq!(progress.load(Ordering::SeqCst), object.size);
        }
        // A second batch for the same objects: already stored, nothing to upload.
        let again = alice
            .lfs_batch_upload(&repo, "main", &objects)
            .await
            .unwrap();
        assert!(again.objects.iter().all(|o| o.actions.is_none()));

        let done = alice
            .commit(
                &repo,
                "main",
                header("add weights", None),
                vec![
                    CommitOp::AddLfs {
                        path: "small.bin".into(),
                        sha256: objects[0].oid.clone(),
                        size: objects[0].size,
                    },
                    CommitOp::AddLfs {
                        path: "sub/big.bin".into(),
                        sha256: objects[1].oid.clone(),
                        size: objects[1].size,
                    },
                ],
                false,
            )
            .await
            .unwrap();
        assert!(done.success);
        assert!(done.commit_url.contains(&done.commit_oid));
        for (path, data) in [("small.bin", &small), ("sub/big.bin", &big)] {
            let got = alice
                .read_range(&repo, &done.commit_oid, path, 0, data.len() as u64)
                .await
                .unwrap();
            assert!(got[..] == data[..], "{path}");
            let m = alice.file_metadata(&repo, "main", path).await.unwrap();
            assert_eq!(m.etag, sha256_hex(data));
            assert!(m.is_lfs);
        }
    })
    .await;
}

#[tokio::test]
async fn commits_of_every_kind_and_stale_parents() {
    let emu = Emulator::start(&[]);
    bounded(async {
        let fx = seed_fixture(&emu).await;
        let alice = emu.client(Some(ALICE));
        let repo = &fx.repo;
        let weights_oid = sha256_hex(fx.bytes("weights.bin"));

        let c1 = alice
            .commit(
                repo,
                "main",
                header("edit, copy, delete", Some(&fx.commit)),
                vec![
                    CommitOp::AddRegular {
                        path: "config.json".into(),
                        content: b"{}".to_vec(),
                    },
                    CommitOp::CopyLfs {
                        path: "copies/weights-copy.bin".into(),
                        sha256: weights_oid.clone(),
                    },
                    CommitOp::DeleteFile {
                        path: "empty.txt".into(),
                    },
                    CommitOp::DeleteFolder {
                        path: "many".into(),
                    },
                ],
                false,
            )
            .await
            .unwrap();
        let tree = alice
            .list_tree(repo, &c1.commit_oid, "", true)
            .collect_all()
            .await
            .unwrap();
        let has = |p: &str| tree.iter().any(|e| e.path == p);
        assert!(!has("empty.txt"));
        assert!(!tree.iter().any(|e| e.path.starts_with("many")));
        assert!(has("copies/weights-copy.bin"));
        let copy = alice
            .read_range(repo, &c1.commit_oid, "copies/weights-copy.bin", 0, 1000)
            .await
            .unwrap();
        assert!(copy[..] == fx.bytes("weights.bin")[..1000]);
        let cfg = alice
            .read_range(repo, &c1.commit_oid, "config.json", 0, 100)
            .await
            .unwrap();
        assert_eq!(&cfg[..], b"{}");
        // The old commit still serves the old bytes.
        let old = alice
            .read_range(repo, &fx.commit, "config.json", 0, 100)
            .await
            .unwrap();
        assert!(old[..] == fx.bytes("config.json")[..]);

        // A commit based on the old head is refused with 412.
        let e = alice
            .commit(
                repo,
                "main",
                header("stale", Some(&fx.commit)),
                vec![CommitOp::AddRegular {
                    path: "late.txt".into(),
                    content: b"late".to_vec(),
                }],
                false,
            )
            .await
            .unwrap_err();
        assert!(matches!(e, HubError::Conflict { .. }), "{e}");
        // Deleting a missing file is an error, not a silent no-op.
        let e = alice
            .commit(
                repo,
                "main",
                header("delete missing", None),
                vec![CommitOp::DeleteFile {
                    path: "never-was.txt".into(),
                }],
                false,
            )
            .await
            .unwrap_err();
        assert!(e.is_not_found(), "{e}");

        // A pull request: the commit lands on refs/pr/N, main is untouched.
        let pr = alice
            .commit(
                repo,
                "main",
                header("proposal", None),
                vec![CommitOp::AddRegular {
                    path: "proposal.txt".into(),
                    content: b"please".to_vec(),
                }],
                true,
            )
            .await
            .unwrap();
        let pr_url = pr.pull_request_url.expect("a PR URL");
        let num = pr_url.rsplit('/').next().unwrap();
        let pr_ref = format!("refs/pr/{num}");
        let refs = alice.list_refs(repo, true).await.unwrap();
        let listed = refs.pull_requests.unwrap();
        assert!(listed.iter().any(|r| r.reference == pr_ref), "{listed:?}");
        let got = alice
            .read_range(repo, &pr.commit_oid, "proposal.txt", 0, 100)
            .await
            .unwrap();
        assert_eq!(&got[..], b"please");
        let m = alice
            .file_metadata(repo, &pr_ref, "proposal.txt")
            .await
            .unwrap();
        assert_eq!(m.commit, pr.commit_oid);
        let e = alice
            .file_metadata(repo, "main", "proposal.txt")
            .await
            .unwrap_err();
        assert!(matches!(e, HubError::EntryNotFound { .. }), "{e}");
    })
    .await;
}

#[tokio::test]
async fn branches_tags_and_repos_lifecycle() {
    let emu = Emulator::start(&[]);
    bounded(async {
        let alice = emu.client(Some(ALICE));
        let repo = dataset("alice/lifecycle");
        alice.create_repo(&repo, false).await.unwrap();
        let e = alice.create_repo(&repo, false).await.unwrap_err();
        assert!(matches!(e, HubError::AlreadyExists { .. }), "{e}");

        let base = alice
            .repo_info(&repo, None, false)
            .await
            .unwrap()
            .sha
            .unwrap();
        let done = upload_files(
            &alice,
            &repo,
            "main",
            &[("a.txt", b"a".to_vec())],
            Some(&base),
        )
        .await
        .unwrap();

        alice
            .create_branch(&repo, "dev/one", Some(&base))
            .await
            .unwrap();
        let dev = alice
            .repo_info(&repo, Some("dev/one"), false)
            .await
            .unwrap();
        assert_eq!(dev.sha.as_deref(), Some(base.as_str()));
        let on_dev = upload_files(&alice, &repo, "dev/one", &[("b.txt", b"b".to_vec())], None)
            .await
            .unwrap();
        assert!(alice
            .file_metadata(&repo, "main", "b.txt")
            .await
            .unwrap_err()
            .is_not_found());
        let m = alice
            .file_metadata(&repo, "dev/one", "b.txt")
            .await
            .unwrap();
        assert_eq!(m.commit, on_dev.commit_oid);

        alice
            .create_tag(&repo, "v1.0", &done.commit_oid)
            .await
            .unwrap();
        let m = alice.file_metadata(&repo, "v1.0", "a.txt").await.unwrap();
        assert_eq!(m.commit, done.commit_oid);
        alice.delete_tag(&repo, "v1.0").await.unwrap();
        alice.delete_branch(&repo, "dev/one").await.unwrap();
        let e = alice
            .repo_info(&repo, Some("dev/one"), false)
            .await
            .unwrap_err();
        assert!(matches!(e, HubError::RevisionNotFound { .. }), "{e}");

        let e = emu
            .client(Some(BOB_READ))
            .create_branch(&repo, "nope", None)
            .await
            .unwrap_err();
        assert!(matches!(e, HubError::Forbidden { .. }), "{e}");

        alice.delete_repo(&repo).await.unwrap();
        let e = alice.repo_info(&repo, None, false).await.unwrap_err();
        assert!(matches!(e, HubError::RepoNotFound { .. }), "{e}");
    })
    .await;
}
