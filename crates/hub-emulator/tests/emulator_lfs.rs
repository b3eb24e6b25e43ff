//! LFS over HTTP: batch basic and multipart uploads, the 302 to the CDN listener with metadata
//! on the redirect, CDN ranges, signatures and their expiry, refused commits.

mod emulator_support;

use emulator_support::{client, header, Emu, READ, WRITE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[tokio::test]
async fn lfs_files_redirect_to_a_signed_cdn_url() {
    let e = Emu::start(&[]);
    e.create_repo(WRITE, "dataset", "alice/d", false).await;
    let bytes = data(100_000);
    let sha = hex::encode(Sha256::digest(&bytes));
    e.commit_lfs("dataset", "alice/d", "w.bin", &bytes).await;
    let c = client();
    let r = c
        .get(e.at("/datasets/alice/d/resolve/main/w.bin"))
        .bearer_auth(WRITE)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(header(&r, "x-linked-size"), "100000");
    assert_eq!(header(&r, "x-linked-etag"), format!("\"{sha}\""));
    assert_eq!(header(&r, "etag"), format!("\"{sha}\""));
    assert_eq!(header(&r, "x-repo-commit").len(), 40);
    assert!(r.headers().get("x-xet-hash").is_none());
    let location = header(&r, "location").to_string();
    assert!(
        location.starts_with(&format!("{}/", e.cdn)),
        "{location} is on the CDN listener"
    );
    assert_ne!(e.cdn, e.url);

    // The CDN needs no token and serves ranges.
    let r = c
        .get(&location)
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&r, "content-range"), "bytes 10-19/100000");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &bytes[10..20]);
    let r = c
        .get(&location)
        .header("range", "bytes=100000-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&r, "content-range"), "bytes */100000");
    let full = c
        .get(&location)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(full.as_ref(), bytes.as_slice());

    // A tampered signature or path is refused.
    let bad = location.replace("signature=", "signature=00");
    assert_eq!(
        c.get(&bad).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let other = location.replace(&sha, &"0".repeat(64));
    assert_eq!(
        c.get(&other).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );

    // The raw route shows the pointer git stores.
    let raw = c
        .get(e.at("/datasets/alice/d/raw/main/w.bin"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        raw,
        format!("version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize 100000\n")
    );

    let s = e.stats().await;
    assert_eq!(s["bytes_served"], 10 + 100_000);
    assert_eq!(s["cdn_requests"], 5);
}

#[tokio::test]
async fn signed_urls_expire() {
    let e = Emu::start(&["--cdn-url-ttl", "1"]);
    e.create_repo(WRITE, "model", "alice/m", false).await;
    e.commit_lfs("model", "alice/m", "w.safetensors", &data(10))
        .await;
    let r = client()
        .get(e.at("/alice/m/resolve/main/w.safetensors"))
        .send()
        .await
        .unwrap();
    let location = header(&r, "location").to_string();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = client().get(&location).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("expired"));
}

#[tokio::test]
async fn multipart_uploads_assemble_and_verify() {
    let e = Emu::start(&[
        "--multipart-threshold",
        "100K",
        "--multipart-part-size",
        "32K",
    ]);
    e.create_repo(WRITE, "model", "alice/m", false).await;
    let bytes = data(250_000);
    e.commit_lfs("model", "alice/m", "big.bin", &bytes).await;
    let s = e.stats().await;
    assert_eq!(s["routes"]["cdn-part"], 8); // ceil(250000 / 32768)
    assert_eq!(s["routes"]["lfs-complete"], 1);
    let c = reqwest::Client::new(); // follows the redirect and drops the token for the CDN host
    let got = c
        .get(e.at("/alice/m/resolve/main/big.bin"))
        .bearer_auth(WRITE)
        .send()
        .await
        .unwrap();
    assert_eq!(got.bytes().await.unwrap().as_ref(), bytes.as_slice());
    let oid = hex::encode(Sha256::digest(&bytes));
    let r = client()
        .post(e.at("/alice/m.git/info/lfs/objects/verify"))
        .bearer_auth(WRITE)
        .json(&json!({"oid": oid, "size": bytes.len()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Already stored: the next batch asks for nothing.
    let batch: Value = client()
        .post(e.at("/alice/m.git/info/lfs/objects/batch"))
        .bearer_auth(WRITE)
        .json(&json!({"operation": "upload", "transfers": ["basic", "multipart"], "objects": [{"oid": oid, "size": bytes.len()}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(batch["objects"][0].get("actions").is_none());
}

#[tokio::test]
async fn uploads_are_checked() {
    let e = Emu::start(&[]);
    e.create_repo(WRITE, "model", "alice/m", false).await;
    let c = client();
    let bytes = data(1000);
    let oid = hex::encode(Sha256::digest(&bytes));
    let batch = |token: &'static str| {
        c.post(e.at("/alice/m.git/info/lfs/objects/batch"))
            .bearer_auth(token)
            .json(&json!({"operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": 1000}]}))
            .send()
    };
    assert_eq!(batch(READ).await.unwrap().status(), StatusCode::FORBIDDEN);
    let b: Value = batch(WRITE).await.unwrap().json().await.unwrap();
    assert_eq!(b["transfer"], "basic");
    let href = b["objects"][0]["actions"]["upload"]["href"]
        .as_str()
        .unwrap()
        .to_string();
    // Wrong content is refused and not stored.
    let r = c.put(&href).body(data(999)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let mut wrong = bytes.clone();
    wrong[0] ^= 1;
    assert_eq!(
        c.put(&href).body(wrong).send().await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    // A commit naming an object that was never uploaded is refused.
    let body = format!(
        "{}\n{}",
        json!({"key": "header", "value": {"summary": "x"}}),
        json!({"key": "lfsFile", "value": {"path": "w.bin", "algo": "sha256", "oid": oid, "size": 1000}})
    );
    let r = c
        .post(e.at("/api/models/alice/m/commit/main"))
        .bearer_auth(WRITE)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // After the upload it lands.
    assert_eq!(
        c.put(&href).body(bytes).send().await.unwrap().status(),
        StatusCode::OK
    );
    let r = c
        .post(e.at("/api/models/alice/m/commit/main"))
        .bearer_auth(WRITE)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Invalid paths are 422.
    let body = format!(
        "{}\n{}",
        json!({"key": "header", "value": {"summary": "x"}}),
        json!({"key": "file", "value": {"path": "../evil", "content": "", "encoding": "base64"}})
    );
    let r = c
        .post(e.at("/api/models/alice/m/commit/main"))
        .bearer_auth(WRITE)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
}
