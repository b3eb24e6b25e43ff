//! Storage Buckets (xet-plan §2.4): lifecycle, visibility and token rules, tree listings with
//! lexical prefixes and Link pagination, paths-info, batch validation, resolve metadata and
//! persistence across restarts. Content is declared through `/_emulator/xet-files` (the CAS
//! side is tested with the official client in scripts/fidelity/test_buckets.py).

mod emulator_support;

use emulator_support::{client, header, Emu, BOB, READ, WRITE};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn hash(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

impl Emu {
    async fn create_bucket(&self, token: &str, id: &str, body: Value) -> reqwest::Response {
        client()
            .post(self.at(&format!("/api/buckets/{id}")))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn xet_file(&self, h: &str, size: u64) {
        let r = client()
            .post(self.at("/_emulator/xet-files"))
            .json(&json!({"xetHash": h, "size": size}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }

    async fn batch(&self, token: &str, id: &str, ops: &[Value]) -> (StatusCode, Value) {
        let body: String = ops.iter().map(|o| format!("{o}\n")).collect();
        let r = client()
            .post(self.at(&format!("/api/buckets/{id}/batch")))
            .bearer_auth(token)
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn get_json(&self, token: Option<&str>, path: &str) -> (StatusCode, Value, String) {
        let mut req = client().get(self.at(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        let link = header(&r, "link").to_string();
        (r.status(), r.json().await.unwrap_or(Value::Null), link)
    }
}

fn add(path: &str, h: &str, mtime: u64) -> Value {
    json!({"type": "addFile", "path": path, "xetHash": h, "mtime": mtime, "contentType": "text/plain"})
}

fn paths(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let p = e["path"].as_str().unwrap().to_string();
            if e["type"] == "directory" {
                format!("{p}/")
            } else {
                p
            }
        })
        .collect()
}

#[tokio::test]
async fn lifecycle_create_info_list_settings_move_delete() {
    let e = Emu::start(&[]);
    let r = e.create_bucket(WRITE, "me/ckpt", json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["url"], format!("{}/buckets/alice/ckpt", e.url));
    // Again: 409 with the URL (exist_ok clients swallow it).
    let r = e.create_bucket(WRITE, "alice/CKPT", json!({})).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    // Org namespace: members only; read tokens and anonymous callers cannot create.
    assert_eq!(
        e.create_bucket(WRITE, "acme/shared", json!({"visibility": "private"}))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        e.create_bucket(BOB, "acme/bobs", json!({})).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        e.create_bucket(READ, "alice/ro", json!({})).await.status(),
        StatusCode::FORBIDDEN
    );
    let r = client()
        .post(e.at("/api/buckets/alice/anon"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        e.create_bucket(WRITE, "alice/bad..name", json!({}))
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );

    let (s, info, _) = e.get_json(None, "/api/buckets/alice/ckpt").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(info["id"], "alice/ckpt");
    assert_eq!(info["private"], false);
    assert_eq!(
        (info["size"].as_u64(), info["totalFiles"].as_u64()),
        (Some(0), Some(0))
    );
    assert!(info["createdAt"].as_str().unwrap().ends_with('Z'));

    let (s, mine, _) = e.get_json(Some(WRITE), "/api/buckets/me").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(paths_of_ids(&mine), ["alice/ckpt"]);
    let (_, org, _) = e.get_json(Some(BOB), "/api/buckets/acme").await;
    assert_eq!(
        paths_of_ids(&org),
        Vec::<String>::new(),
        "private bucket listed to bob"
    );
    let (_, org, _) = e.get_json(Some(READ), "/api/buckets/acme?search=SHA").await;
    assert_eq!(paths_of_ids(&org), ["acme/shared"]);
    let (s, _, _) = e.get_json(None, "/api/buckets/me").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Settings: private, then bob (not a member) no longer sees it.
    let r = client()
        .put(e.at("/api/buckets/alice/ckpt/settings"))
        .bearer_auth(WRITE)
        .json(&json!({"private": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (s, _, _) = e.get_json(Some(BOB), "/api/buckets/alice/ckpt").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Move into the org; the old id is gone.
    let mv = |from: &str, to: &str, token: &'static str| {
        client()
            .post(e.at("/api/repos/move"))
            .bearer_auth(token)
            .json(&json!({"fromRepo": from, "toRepo": to, "type": "bucket"}))
            .send()
    };
    assert_eq!(
        mv("alice/ckpt", "acme/ckpt", BOB).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        mv("alice/ckpt", "acme/shared", WRITE)
            .await
            .unwrap()
            .status(),
        StatusCode::CONFLICT
    );
    assert_eq!(
        mv("alice/ckpt", "acme/ckpt", WRITE).await.unwrap().status(),
        StatusCode::OK
    );
    let (s, _, _) = e.get_json(Some(WRITE), "/api/buckets/alice/ckpt").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, info, _) = e.get_json(Some(WRITE), "/api/buckets/acme/ckpt").await;
    assert_eq!((s, info["private"].clone()), (StatusCode::OK, json!(true)));

    // Delete: write members only; then 404 (`missing_ok` clients rely on it).
    let del = |id: &str, token: &'static str| {
        client()
            .delete(e.at(&format!("/api/buckets/{id}")))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(
        del("acme/ckpt", READ).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        del("acme/ckpt", WRITE).await.unwrap().status(),
        StatusCode::OK
    );
    let r = del("acme/ckpt", WRITE).await.unwrap();
    assert_eq!(
        (r.status(), header(&r, "x-error-code")),
        (StatusCode::NOT_FOUND, "RepoNotFound")
    );
}

fn paths_of_ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn private_buckets_look_missing_and_writes_need_membership() {
    let e = Emu::start(&[]);
    e.create_bucket(WRITE, "alice/secret", json!({"visibility": "private"}))
        .await;
    e.xet_file(&hash(1), 10).await;
    let (s, v) = e
        .batch(WRITE, "alice/secret", &[add("a.txt", &hash(1), 5)])
        .await;
    assert_eq!((s, v), (StatusCode::OK, json!({"failed": []})));
    for path in [
        "/api/buckets/alice/secret",
        "/api/buckets/alice/secret/tree",
        "/api/buckets/alice/secret/xet-read-token",
        "/buckets/alice/secret/resolve/a.txt",
    ] {
        // HEAD for resolve: its GET answer depends on the CAS bridge.
        let method = if path.contains("/resolve/") {
            reqwest::Method::HEAD
        } else {
            reqwest::Method::GET
        };
        let get = |token: Option<&str>| {
            let mut req = client().request(method.clone(), e.at(path));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            req.send()
        };
        let r = get(None).await.unwrap();
        assert_eq!(
            (r.status(), header(&r, "x-error-code")),
            (StatusCode::UNAUTHORIZED, "RepoNotFound"),
            "{path}"
        );
        let r = get(Some(BOB)).await.unwrap();
        assert_eq!(
            (r.status(), header(&r, "x-error-code")),
            (StatusCode::NOT_FOUND, "RepoNotFound"),
            "{path}"
        );
        let r = get(Some(READ)).await.unwrap();
        assert!(
            r.status().is_success() || r.status() == StatusCode::FOUND,
            "{path}: {}",
            r.status()
        );
    }
    // Writes: bob cannot even see it; a read token gets 403; the write token's tokens work.
    let (s, _) = e.batch(BOB, "alice/secret", &[add("b", &hash(1), 5)]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = e
        .batch(READ, "alice/secret", &[add("b", &hash(1), 5)])
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let r = client()
        .get(e.at("/api/buckets/alice/secret/xet-write-token"))
        .bearer_auth(READ)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // A public bucket of alice: bob reads it but cannot write to it.
    e.create_bucket(WRITE, "alice/open", json!({})).await;
    let r = client()
        .get(e.at("/api/buckets/alice/open/xet-read-token"))
        .bearer_auth(BOB)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(!header(&r, "x-xet-access-token").is_empty());
    assert!(!header(&r, "x-xet-token-expiration").is_empty());
    let v: Value = r.json().await.unwrap();
    assert!(v["casUrl"].is_string() && v["accessToken"].is_string() && v["exp"].is_u64());
    let r = client()
        .get(e.at("/api/buckets/alice/open/xet-write-token"))
        .bearer_auth(BOB)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (s, _) = e.batch(BOB, "alice/open", &[add("b", &hash(1), 5)]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn batch_validates_each_operation() {
    let e = Emu::start(&[]);
    e.create_bucket(WRITE, "alice/b", json!({})).await;
    e.create_bucket(BOB, "bob/hidden", json!({"visibility": "private"}))
        .await;
    e.xet_file(&hash(1), 100).await;
    e.xet_file(&hash(2), 200).await;
    let (s, v) = e
        .batch(
            WRITE,
            "alice/b",
            &[
                add("dir/one.bin", &hash(1), 1_700_000_000_123),
                add("never-uploaded", &hash(9), 1),
                add("bad//path", &hash(1), 1),
                add("../escape", &hash(1), 1),
                add("upper", &hash(0xab).to_uppercase(), 1),
                json!({"type": "deleteFile", "path": "not-there"}),
                json!({"type": "copyFile", "path": "c1", "xetHash": hash(1), "mtime": 1,
                       "sourceRepoType": "bucket", "sourceRepoId": "bob/hidden"}),
                json!({"type": "copyFile", "path": "c2", "xetHash": hash(2), "mtime": 1,
                       "sourceRepoType": "bucket", "sourceRepoId": "alice/b"}),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let failed: Vec<&str> = v["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert!(f["error"].as_str().is_some_and(|e| !e.is_empty()));
            f["path"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        failed,
        [
            "never-uploaded",
            "bad//path",
            "../escape",
            "upper",
            "c1",
            "c2",
            "not-there"
        ]
    );
    // Copy from a bucket that holds the hash works, and sizes come from the CAS.
    let (s, v) = e
        .batch(
            WRITE,
            "alice/b",
            &[
                json!({"type": "copyFile", "path": "copy.bin", "xetHash": hash(1), "mtime": 7,
                     "sourceRepoType": "bucket", "sourceRepoId": "alice/b"}),
            ],
        )
        .await;
    assert_eq!((s, v), (StatusCode::OK, json!({"failed": []})));
    // All failed: 422 with the list.
    let (s, v) = e.batch(WRITE, "alice/b", &[add("x", &hash(9), 1)]).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["failed"][0]["path"], "x");
    // Malformed NDJSON is a 400 for the whole request, and nothing applied.
    let r = client()
        .post(e.at("/api/buckets/alice/b/batch"))
        .bearer_auth(WRITE)
        .body(format!("{}\nnot json\n", add("y", &hash(1), 1)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    let r = client()
        .post(e.at("/api/buckets/alice/b/paths-info"))
        .json(&json!({"paths": ["dir/one.bin", "copy.bin", "y", "dir"]}))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(paths(&v), ["dir/one.bin", "copy.bin"]);
    assert_eq!(v[0]["size"], 100);
    assert_eq!(v[0]["xetHash"], hash(1));
    assert_eq!(v[0]["mtime"], "2023-11-14T22:13:20.123Z");
    assert_eq!(v[0]["contentType"], "text/plain");
    assert!(v[0]["uploadedAt"].is_string());
    let (_, info, _) = e.get_json(None, "/api/buckets/alice/b").await;
    assert_eq!(
        (info["size"].as_u64(), info["totalFiles"].as_u64()),
        (Some(200), Some(2))
    );

    // Delete, then overwrite in place.
    let (s, _) = e
        .batch(
            WRITE,
            "alice/b",
            &[
                json!({"type": "deleteFile", "path": "copy.bin"}),
                add("dir/one.bin", &hash(2), 2),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, info, _) = e.get_json(None, "/api/buckets/alice/b").await;
    assert_eq!(
        (info["size"].as_u64(), info["totalFiles"].as_u64()),
        (Some(200), Some(1))
    );
}

#[tokio::test]
async fn tree_lists_prefixes_lexically_and_paginates() {
    let e = Emu::start(&["--page-size", "3"]);
    e.create_bucket(WRITE, "alice/t", json!({})).await;
    e.xet_file(&hash(1), 1).await;
    let files = [
        "a.txt",
        "logs/x/1",
        "logs/x/2",
        "logs/y",
        "logs.json",
        "logs_backup/z",
        "m/1",
        "m/2",
        "m/3",
        "m/4",
        "m/5",
    ];
    let ops: Vec<Value> = files.iter().map(|p| add(p, &hash(1), 1)).collect();
    assert_eq!(e.batch(WRITE, "alice/t", &ops).await.0, StatusCode::OK);

    // Follows Link: rel="next" and gathers every page.
    async fn all(e: &Emu, path: &str) -> Vec<String> {
        let mut url = e.at(path);
        let mut out = Vec::new();
        let mut pages = 0;
        loop {
            let r = client().get(&url).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{url}");
            let link = header(&r, "link").to_string();
            let v: Value = r.json().await.unwrap();
            assert!(v.as_array().unwrap().len() <= 3);
            out.extend(paths(&v));
            pages += 1;
            assert!(pages < 20);
            match link
                .strip_prefix('<')
                .and_then(|l| l.split_once(">; rel=\"next\""))
            {
                Some((next, _)) => url = next.to_string(),
                None => break,
            }
        }
        out
    }
    assert_eq!(
        all(&e, "/api/buckets/alice/t/tree").await,
        ["a.txt", "logs/", "logs.json", "logs_backup/", "m/"]
    );
    assert_eq!(
        all(&e, "/api/buckets/alice/t/tree/logs").await,
        ["logs.json", "logs/x/", "logs/y", "logs_backup/"]
    );
    assert_eq!(
        all(&e, "/api/buckets/alice/t/tree/logs%2F?recursive=true").await,
        ["logs/x/1", "logs/x/2", "logs/y"]
    );
    assert_eq!(
        all(&e, "/api/buckets/alice/t/tree/m?recursive=true").await,
        ["m/1", "m/2", "m/3", "m/4", "m/5"]
    );
    assert_eq!(
        all(&e, "/api/buckets/alice/t/tree?recursive=true")
            .await
            .len(),
        files.len()
    );
    // Nothing under a prefix is an empty list, not an error (clients probe destinations so).
    assert!(all(&e, "/api/buckets/alice/t/tree/none").await.is_empty());
    let (_, _, link) = e
        .get_json(None, "/api/buckets/alice/t/tree/m?recursive=1&limit=2")
        .await;
    assert!(link.contains("rel=\"next\""), "{link}");
}

#[tokio::test]
async fn resolve_answers_xet_metadata() {
    let e = Emu::start(&[]);
    e.create_bucket(WRITE, "alice/r", json!({})).await;
    e.xet_file(&hash(3), 4242).await;
    e.batch(WRITE, "alice/r", &[add("d/f g.bin", &hash(3), 1)])
        .await;
    let r = client()
        .head(e.at("/buckets/alice/r/resolve/d%2Ff%20g.bin"))
        .send()
        .await
        .unwrap();
    assert!(
        r.status() == StatusCode::OK || r.status() == StatusCode::FOUND,
        "{}",
        r.status()
    );
    assert_eq!(header(&r, "x-xet-hash"), hash(3));
    assert_eq!(header(&r, "x-linked-size"), "4242");
    let link = header(&r, "link");
    assert!(
        link.contains(&format!(
            "<{}/api/buckets/alice/r/xet-read-token>; rel=\"xet-auth\"",
            e.url
        )),
        "{link}"
    );
    let r = client()
        .head(e.at("/buckets/alice/r/resolve/d/missing"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = client()
        .get(e.at("/buckets/alice/r/resolve/d/missing"))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "x-error-code"), "EntryNotFound");
}

#[tokio::test]
async fn buckets_survive_a_restart() {
    let mut e = Emu::start(&[]);
    e.create_bucket(WRITE, "alice/keep", json!({"visibility": "private"}))
        .await;
    e.xet_file(&hash(4), 77).await;
    e.batch(WRITE, "alice/keep", &[add("k/v", &hash(4), 99)])
        .await;
    let (_, before, _) = e
        .get_json(Some(WRITE), "/api/buckets/alice/keep/tree?recursive=true")
        .await;
    e.restart();
    let (s, info, _) = e.get_json(Some(WRITE), "/api/buckets/alice/keep").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (info["private"].clone(), info["size"].clone()),
        (json!(true), json!(77))
    );
    let (_, after, _) = e
        .get_json(Some(WRITE), "/api/buckets/alice/keep/tree?recursive=true")
        .await;
    assert_eq!(before, after);
    let (s, _, _) = e.get_json(Some(BOB), "/api/buckets/alice/keep").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
