//! Read path of the emulator over HTTP: resolve headers, ranges, git ids, revisions of every
//! kind, tree pagination, paths-info, refs and commit history.

mod emulator_support;

use emulator_support::{client, git_blob, header, Emu, WRITE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha1::{Digest, Sha1};

async fn seeded(extra: &[&str]) -> Emu {
    let e = Emu::start(extra);
    assert_eq!(
        e.create_repo(WRITE, "model", "alice/m", false)
            .await
            .status(),
        StatusCode::OK
    );
    e.commit(
        "models/alice/m",
        "main",
        &[
            ("hello.txt", Some(b"hello")),
            ("dir/a b#c.txt", Some(b"spaces and hash")),
            ("empty", Some(b"")),
        ],
    )
    .await;
    e
}

#[tokio::test]
async fn resolve_serves_regular_files_with_hub_headers() {
    let e = seeded(&[]).await;
    let c = client();
    let url = e.at("/alice/m/resolve/main/hello.txt");
    let r = c.head(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let commit = header(&r, "x-repo-commit").to_string();
    assert_eq!(commit.len(), 40);
    // `printf hello | git hash-object --stdin`
    assert_eq!(
        header(&r, "etag"),
        "\"b6fc4c620b67d95f953a5c1c1230aaab5db5a1b0\""
    );
    assert_eq!(header(&r, "x-linked-etag"), header(&r, "etag"));
    assert_eq!(header(&r, "x-linked-size"), "5");
    assert_eq!(header(&r, "content-length"), "5");
    assert_eq!(header(&r, "accept-ranges"), "bytes");
    assert!(r.headers().get("content-encoding").is_none());

    let r = c
        .get(&url)
        .header("range", "bytes=1-3")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&r, "content-range"), "bytes 1-3/5");
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"ell");
    let r = c
        .get(&url)
        .header("range", "bytes=-2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"lo");
    let r = c
        .get(&url)
        .header("range", "bytes=5-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&r, "content-range"), "bytes */5");
    let r = c
        .get(&url)
        .header("range", "bytes=0-1,3-4")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "multi-range is answered with the whole file"
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"hello");
    let r = c
        .get(&url)
        .header(
            "if-none-match",
            "\"b6fc4c620b67d95f953a5c1c1230aaab5db5a1b0\"",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);

    // Empty file: 200 with no bytes, any range unsatisfiable.
    let r = c
        .get(e.at("/alice/m/resolve/main/empty"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status(), header(&r, "content-length")),
        (StatusCode::OK, "0")
    );
    let r = c
        .get(e.at("/alice/m/resolve/main/empty"))
        .header("range", "bytes=0-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);

    // Percent-encoded names.
    let r = c
        .get(e.at("/alice/m/resolve/main/dir/a%20b%23c.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"spaces and hash");

    // Errors carry the Hub's codes; a missing entry still names the commit.
    let r = c
        .get(e.at("/alice/m/resolve/main/missing.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(header(&r, "x-error-code"), "EntryNotFound");
    assert_eq!(header(&r, "x-repo-commit"), commit);
    let r = c
        .get(e.at("/alice/m/resolve/nope/hello.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status(), header(&r, "x-error-code")),
        (StatusCode::NOT_FOUND, "RevisionNotFound")
    );
    let r = c
        .get(e.at("/alice/m/resolve/main/dir"))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "x-error-code"), "EntryNotFound");
}

#[tokio::test]
async fn repo_ids_are_case_insensitive_with_relative_redirects() {
    let e = seeded(&[]).await;
    let c = client();
    let r = c
        .get(e.at("/ALICE/M/resolve/main/hello.txt?x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(
        header(&r, "location"),
        "/alice/m/resolve/main/hello.txt?x=1"
    );
    let r = c
        .get(e.at("/api/models/Alice/M/revision/main"))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "location"), "/api/models/alice/m/revision/main");
    // Writes are served directly under any casing.
    let r = c
        .post(e.at("/api/models/ALICE/m/paths-info/main"))
        .form(&[("paths", "hello.txt")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

fn git_tree(entries: &[(&str, bool, &str)]) -> String {
    // Independent implementation of git's tree encoding (entries given in git order).
    let mut body = Vec::new();
    for (name, dir, oid) in entries {
        body.extend_from_slice(if *dir { b"40000 " } else { b"100644 " });
        body.extend_from_slice(name.as_bytes());
        body.push(0);
        body.extend_from_slice(&hex::decode(oid).unwrap());
    }
    let mut h = Sha1::new();
    h.update(format!("tree {}\0", body.len()));
    h.update(&body);
    hex::encode(h.finalize())
}

#[tokio::test]
async fn ids_are_git_ids() {
    let e = seeded(&[]).await;
    let tree: Vec<Value> = client()
        .get(e.at("/api/models/alice/m/tree/main?recursive=true"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let oid = |p: &str| {
        tree.iter().find(|t| t["path"] == p).unwrap()["oid"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(oid("hello.txt"), git_blob(b"hello"));
    assert_eq!(oid("empty"), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
    let dir_oid = git_tree(&[("a b#c.txt", false, &git_blob(b"spaces and hash"))]);
    assert_eq!(oid("dir"), dir_oid);
    let paths: Vec<&str> = tree.iter().map(|t| t["path"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        [
            ".gitattributes",
            "dir",
            "dir/a b#c.txt",
            "empty",
            "hello.txt"
        ]
    );
    let commits: Vec<Value> = client()
        .get(e.at("/api/models/alice/m/commits/main"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(commits.len(), 2);
    for c in &commits {
        let id = c["id"].as_str().unwrap();
        assert!(
            id.len() == 40
                && id
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }
}

#[tokio::test]
async fn revisions_of_every_kind() {
    let e = seeded(&[]).await;
    let c = client();
    let api = |p: &str| e.at(&format!("/api/models/alice/m{p}"));
    let main_sha = c
        .get(api("/revision/main"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["sha"]
        .as_str()
        .unwrap()
        .to_string();
    let r = c
        .post(api("/branch/feature%2Fx"))
        .bearer_auth(WRITE)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = c
        .post(api("/tag/main"))
        .bearer_auth(WRITE)
        .json(&json!({"tag": "v1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    e.commit(
        "models/alice/m",
        "feature/x",
        &[("hello.txt", Some(b"branch"))],
    )
    .await;
    let pr: Value = {
        let body = format!(
            "{}\n{}",
            json!({"key": "header", "value": {"summary": "pr"}}),
            json!({"key": "file", "value": {"path": "hello.txt", "content": "cHI=", "encoding": "base64"}})
        );
        c.post(api("/commit/main?create_pr=1"))
            .bearer_auth(WRITE)
            .body(body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    };
    assert!(pr["pullRequestUrl"]
        .as_str()
        .unwrap()
        .ends_with("/alice/m/discussions/1"));
    let get = |rev: &str| {
        let url = e.at(&format!(
            "/alice/m/resolve/{}/hello.txt",
            hub_wire::repo::encode_revision(rev)
        ));
        let c = c.clone();
        async move {
            c.get(url)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
                .to_vec()
        }
    };
    assert_eq!(get("main").await, b"hello");
    assert_eq!(get("v1").await, b"hello");
    assert_eq!(get(&main_sha).await, b"hello");
    assert_eq!(get(&main_sha[..7]).await, b"hello");
    assert_eq!(get("feature/x").await, b"branch");
    assert_eq!(get("refs/heads/feature/x").await, b"branch");
    assert_eq!(get("refs/pr/1").await, b"pr");
    // /tree/ also takes a literal refs/pr/N.
    let r = c.get(api("/tree/refs/pr/1")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Convert refs come from a control route.
    let r = c
        .post(e.at("/_emulator/refs"))
        .json(
            &json!({"repo_type": "model", "repo": "alice/m", "name": "parquet", "revision": "v1"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(get("refs/convert/parquet").await, b"hello");
    let refs: Value = c
        .get(api("/refs?include_prs=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(refs["branches"][0]["name"], "main");
    assert_eq!(refs["branches"][1]["ref"], "refs/heads/feature/x");
    assert_eq!(refs["tags"][0]["targetCommit"], main_sha.as_str());
    assert_eq!(refs["converts"][0]["ref"], "refs/convert/parquet");
    assert_eq!(refs["pullRequests"][0]["ref"], "refs/pr/1");
    let refs: Value = c
        .get(api("/refs"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(refs.get("pullRequests").is_none());
}

#[tokio::test]
async fn tree_pages_follow_absolute_link_headers() {
    let e = seeded(&["--page-size", "3"]).await;
    let files: Vec<(String, Vec<u8>)> = (0..10)
        .map(|i| (format!("many/f{i:02}"), vec![b'x'; i]))
        .collect();
    let refs: Vec<(&str, Option<&[u8]>)> = files
        .iter()
        .map(|(p, d)| (p.as_str(), Some(d.as_slice())))
        .collect();
    e.commit("models/alice/m", "main", &refs).await;
    let c = client();
    let mut url = e.at("/api/models/alice/m/tree/main/many");
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let r = c.get(&url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let link = header(&r, "link").to_string();
        let page: Vec<Value> = r.json().await.unwrap();
        assert!(page.len() <= 3);
        seen.extend(page.iter().map(|p| p["path"].as_str().unwrap().to_string()));
        pages += 1;
        if link.is_empty() {
            break;
        }
        assert!(
            link.starts_with(&format!("<{}/api/models/alice/m/tree/main/many?", e.url)),
            "{link}"
        );
        assert!(link.ends_with(">; rel=\"next\""));
        url = link[1..link.find('>').unwrap()].to_string();
    }
    assert_eq!(pages, 4);
    assert_eq!(seen, files.iter().map(|f| f.0.clone()).collect::<Vec<_>>());
    // `%2F` in the path works like `/`; listing a file or a missing path is a 404.
    let r = c
        .get(e.at("/api/models/alice/m/tree/main/many%2F"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = c
        .get(e.at("/api/models/alice/m/tree/main/hello.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "x-error-code"), "EntryNotFound");
    // Commit history pages too, with a total count.
    let r = c
        .get(e.at("/api/models/alice/m/commits/main?limit=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "x-total-count"), "3");
    assert!(header(&r, "link").contains("p=1"));
}

#[tokio::test]
async fn paths_info_accepts_form_and_json() {
    let e = seeded(&[]).await;
    let c = client();
    let url = e.at("/api/models/alice/m/paths-info/main");
    let form: Vec<Value> = c
        .post(&url)
        .form(&[
            ("paths", "hello.txt"),
            ("paths", "dir"),
            ("paths", "nope"),
            ("expand", "true"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(form.len(), 2);
    assert_eq!(form[0]["type"], "file");
    assert_eq!(form[0]["lastCommit"]["title"], "test commit");
    assert_eq!(form[1]["type"], "directory");
    let json: Vec<Value> = c
        .post(&url)
        .json(&json!({"paths": ["hello.txt"], "expand": false}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(json[0]["oid"], git_blob(b"hello"));
    assert!(json[0].get("lastCommit").is_none());
}

#[tokio::test]
async fn legacy_one_part_ids() {
    let e = Emu::start(&[]);
    let c = client();
    let r = c
        .post(e.at("/_emulator/repos"))
        .json(&json!({"type": "model", "id": "gpt2", "owner": "alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    e.commit("models/gpt2", "main", &[("config.json", Some(b"{}"))])
        .await;
    let r = c
        .get(e.at("/gpt2/resolve/main/config.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"{}");
    let info: Value = c
        .get(e.at("/api/models/gpt2"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["id"], "gpt2");
    assert!(info.get("author").is_none());
    let tree: Vec<Value> = c
        .get(e.at("/api/models/gpt2/tree/main"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tree.len(), 2);
    // A two-part id whose name looks like an API keyword still means that repo.
    e.create_repo(WRITE, "model", "alice/tree", false).await;
    let info: Value = c
        .get(e.at("/api/models/alice/tree"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["id"], "alice/tree");
}

/// Long ranges are served from a mapping in 1 MiB chunks, short ones with one read: both must
/// give exactly the stored bytes, across chunk edges and at the end of the file.
#[tokio::test]
async fn long_and_short_ranges_give_the_stored_bytes() {
    let e = Emu::start(&[]);
    assert_eq!(
        e.create_repo(WRITE, "model", "alice/big", false)
            .await
            .status(),
        StatusCode::OK
    );
    // 9 MiB + 123 bytes of a pattern that differs at every offset modulo 251.
    let data: Vec<u8> = (0..(9u64 << 20) + 123).map(|i| (i % 251) as u8).collect();
    e.commit("models/alice/big", "main", &[("big.bin", Some(&data))])
        .await;
    let c = client();
    let url = e.at("/alice/big/resolve/main/big.bin");
    let full = c.get(&url).send().await.unwrap();
    assert_eq!(full.status(), StatusCode::OK);
    assert!(full.bytes().await.unwrap().as_ref() == data.as_slice());
    let len = data.len() as u64;
    for (start, end) in [
        (0, 4095),                      // short
        ((4 << 20) - 1, (8 << 20) - 3), // 4 MiB - 1: the longest one read in one go
        (7, (4 << 20) + 6),             // exactly 4 MiB: the shortest mapped one
        (5, (5 << 20) + 77),            // long, from an odd offset, across chunk edges
        ((3 << 20) + 1, len - 1),       // long, to the end
        (len - 10, len - 1),            // short, at the end
    ] {
        let r = c
            .get(&url)
            .header("range", format!("bytes={start}-{end}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
        let got = r.bytes().await.unwrap();
        assert!(
            got.as_ref() == &data[start as usize..=end as usize],
            "range {start}-{end}: {} bytes, mismatch",
            got.len()
        );
    }
}
