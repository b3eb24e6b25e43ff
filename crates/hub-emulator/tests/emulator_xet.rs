//! The Xet CAS (issue 11): xet-core's own client (`xet_data` upload session and
//! `FileReconstructor` over a `RemoteClient`) round-trips a file through the running emulator;
//! the Hub links the commit's sha256 to the uploaded Xet file; tokens are scoped and expire;
//! signed xorb URLs answer ranges and 403 once expired; `--no-xet` is a legacy Hub.

mod emulator_support;

use std::sync::Arc;

use emulator_support::{client, header, Emu, READ, WRITE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use xet_client::cas_client::auth::AuthConfig;
use xet_client::cas_client::{Client, RemoteClient};
use xet_client::cas_types::FileRange;
use xet_core_structures::merklehash::MerkleHash;
use xet_data::file_reconstruction::FileReconstructor;
use xet_data::processing::configurations::{SessionContext, TranslatorConfig};
use xet_data::processing::{FileUploadSession, Sha256Policy};
use xet_runtime::config::XetConfig;
use xet_runtime::core::XetContext;

/// Incompressible-ish deterministic bytes (so chunks do not compress to nothing).
fn data(n: usize, seed: u64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..n).map(|_| rng.u8(..)).collect()
}

fn ctx() -> XetContext {
    let _ = rustls::crypto::ring::default_provider().install_default();
    XetContext::from_external(tokio::runtime::Handle::current(), XetConfig::default())
}

struct Token {
    cas: String,
    token: String,
    exp: u64,
}

async fn token(e: &Emu, hub_token: &str, kind: &str, repo: &str, rev: &str) -> reqwest::Response {
    client()
        .get(e.at(&format!("/api/models/{repo}/xet-{kind}-token/{rev}")))
        .bearer_auth(hub_token)
        .send()
        .await
        .unwrap()
}

async fn token_ok(e: &Emu, hub_token: &str, kind: &str, repo: &str) -> Token {
    let r = token(e, hub_token, kind, repo, "main").await;
    assert_eq!(r.status(), StatusCode::OK);
    let (hcas, htok, hexp) = (
        header(&r, "x-xet-cas-url").to_string(),
        header(&r, "x-xet-access-token").to_string(),
        header(&r, "x-xet-token-expiration").to_string(),
    );
    let v: Value = r.json().await.unwrap();
    // Both forms, the same values (huggingface_hub reads headers, hf_xet the JSON).
    assert_eq!(v["casUrl"], json!(hcas));
    assert_eq!(v["accessToken"], json!(htok));
    assert_eq!(v["exp"].as_u64().unwrap().to_string(), hexp);
    assert_eq!(hcas, format!("{}/cas", e.cdn));
    Token {
        cas: hcas,
        token: htok,
        exp: v["exp"].as_u64().unwrap(),
    }
}

fn auth(t: &Token) -> Option<AuthConfig> {
    AuthConfig::maybe_new(Some(t.token.clone()), Some(t.exp), None)
}

/// Uploads `bytes` through xet-data's session against the emulator's CAS; returns the Xet hash.
async fn upload(ctx: &XetContext, t: &Token, cache: &std::path::Path, bytes: &[u8]) -> String {
    let session = SessionContext {
        endpoint: t.cas.clone(),
        auth: auth(t),
        custom_headers: None,
        repo_paths: vec!["".into()],
        session_id: Some("test".into()),
        cache_root: Some(cache.to_path_buf()),
    };
    let cfg = Arc::new(TranslatorConfig::new(ctx, session).unwrap());
    let up = FileUploadSession::new(cfg).await.unwrap();
    let (_, mut cleaner) = up
        .start_clean(None, Some(bytes.len() as u64), Sha256Policy::Compute)
        .unwrap();
    cleaner.add_data(bytes).await.unwrap();
    let (info, _) = cleaner.finish().await.unwrap();
    up.finalize().await.unwrap();
    info.hash
}

async fn download(ctx: &XetContext, t: &Token, hash: &str, range: Option<(u64, u64)>) -> Vec<u8> {
    let client: Arc<dyn Client> =
        RemoteClient::new(ctx.clone(), &t.cas, &auth(t), "test", false, None);
    let mut r = FileReconstructor::new(ctx, &client, MerkleHash::from_hex(hash).unwrap());
    if let Some((a, b)) = range {
        r = r.with_byte_range(FileRange::new(a, b));
    }
    let mut s = r.reconstruct_to_stream();
    let mut out = Vec::new();
    while let Some(b) = s.next().await.unwrap() {
        out.extend_from_slice(&b);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_round_trips_through_the_cas_and_the_hub_links_it() {
    let e = Emu::start(&[]);
    e.create_repo(WRITE, "model", "alice/x", false).await;
    let ctx = ctx();
    let tmp = tempfile::tempdir().unwrap();
    let bytes = data(3 << 20, 1);
    let sha = hex::encode(Sha256::digest(&bytes));

    // A commit naming content that was never uploaded is refused.
    let refused = client()
        .post(e.at("/api/models/alice/x/commit/main"))
        .bearer_auth(WRITE)
        .header("content-type", "application/x-ndjson")
        .body(format!(
            "{}\n{}\n",
            json!({"key":"header","value":{"summary":"x"}}),
            json!({"key":"lfsFile","value":{"path":"w.bin","algo":"sha256","oid":sha,"size":bytes.len()}})
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);

    e.reset_stats().await;
    let w = token_ok(&e, WRITE, "write", "alice/x").await;
    let hash = upload(&ctx, &w, tmp.path(), &bytes).await;
    let st = e.stats().await;
    assert!(st["xorb_uploads"].as_u64().unwrap() >= 1, "{st}");
    let received = st["cas_bytes_received"].as_u64().unwrap();
    assert!(received >= bytes.len() as u64, "{st}");
    assert!(st["routes"]["cas-shard-v2"].as_u64().unwrap() >= 1, "{st}");

    // Now the commit goes through, and the tree carries the Xet hash next to lfs.
    let r = client()
        .post(e.at("/api/models/alice/x/commit/main"))
        .bearer_auth(WRITE)
        .header("content-type", "application/x-ndjson")
        .body(format!(
            "{}\n{}\n",
            json!({"key":"header","value":{"summary":"x"}}),
            json!({"key":"lfsFile","value":{"path":"w.bin","algo":"sha256","oid":sha,"size":bytes.len()}})
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let tree: Value = client()
        .get(e.at("/api/models/alice/x/tree/main"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entry = tree
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["path"] == "w.bin")
        .unwrap();
    assert_eq!(entry["xetHash"], json!(hash));
    assert_eq!(entry["lfs"]["oid"], json!(sha));
    let info: Value = client()
        .get(e.at("/api/models/alice/x"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["xetEnabled"], json!(true));

    // resolve: the Xet headers and a 302 to the bridge on the CDN origin.
    let r = client()
        .head(e.at("/alice/x/resolve/main/w.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let commit = header(&r, "x-repo-commit").to_string();
    assert_eq!(header(&r, "x-xet-hash"), hash);
    assert_eq!(header(&r, "x-linked-etag"), format!("\"{sha}\""));
    assert_eq!(header(&r, "x-linked-size"), bytes.len().to_string());
    let link = header(&r, "link");
    assert!(
        link.contains(&format!(
            "<{}/api/models/alice/x/xet-read-token/{commit}>; rel=\"xet-auth\"",
            e.url
        )),
        "{link}"
    );
    assert!(
        link.contains(&format!(
            "<{}/cas/v1/reconstructions/{hash}>; rel=\"xet-reconstruction-info\"",
            e.cdn
        )),
        "{link}"
    );
    let bridge = header(&r, "location").to_string();
    assert!(
        bridge.starts_with(&format!("{}/cas/bridge/{hash}?", e.cdn)),
        "{bridge}"
    );

    // The bridge: full Range support, no token, bytes reassembled from xorbs.
    let r = client()
        .get(&bridge)
        .header("range", "bytes=1000000-1000099")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header(&r, "content-range"),
        format!("bytes 1000000-1000099/{}", bytes.len())
    );
    assert_eq!(
        r.bytes().await.unwrap().as_ref(),
        &bytes[1_000_000..1_000_100]
    );
    let r = client()
        .get(&bridge)
        .header("range", "bytes=-10")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        r.bytes().await.unwrap().as_ref(),
        &bytes[bytes.len() - 10..]
    );
    let full = client()
        .get(&bridge)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(full.as_ref() == &bytes[..], "bridge full body byte-exact");

    // Download through the CAS with a read token (v2 plan, signed xorb URLs), whole and a range.
    e.reset_stats().await;
    let rt = token_ok(&e, READ, "read", "alice/x").await;
    let got = download(&ctx, &rt, &hash, None).await;
    assert!(got == bytes, "CAS download byte-exact");
    let part = download(&ctx, &rt, &hash, Some((12345, 2_000_000))).await;
    assert!(
        part == bytes[12345..2_000_000],
        "CAS range download byte-exact"
    );
    let st = e.stats().await;
    assert!(st["reconstructions"].as_u64().unwrap() >= 2, "{st}");
    assert!(st["xorb_fetches"].as_u64().unwrap() >= 2, "{st}");
    assert!(
        st["cas_bytes_served"].as_u64().unwrap() >= bytes.len() as u64,
        "{st}"
    );

    // Re-uploading the same bytes with a fresh client cache sends no xorb (global dedup).
    e.reset_stats().await;
    let tmp2 = tempfile::tempdir().unwrap();
    let again = upload(&ctx, &w, tmp2.path(), &bytes).await;
    assert_eq!(again, hash);
    let st = e.stats().await;
    assert!(st["dedup_queries"].as_u64().unwrap() >= 1, "{st}");
    assert_eq!(st["xorb_uploads"], json!(0), "{st}");

    // The data survives a restart (index of sha256 -> Xet file included).
    let mut e = e;
    e.restart();
    let r = client()
        .head(e.at("/alice/x/resolve/main/w.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "x-xet-hash"), hash);
    let rt = token_ok(&e, READ, "read", "alice/x").await;
    assert!(download(&ctx, &rt, &hash, None).await == bytes);
}

#[tokio::test]
async fn cas_tokens_are_scoped_and_checked() {
    let e = Emu::start(&[]);
    e.create_repo(WRITE, "model", "alice/p", true).await;
    // Hub-side rules: a read token gets no write token, a stranger sees no private repo.
    assert_eq!(
        token(&e, READ, "write", "alice/p", "main").await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        token(&e, emulator_support::BOB, "read", "alice/p", "main")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        token(&e, WRITE, "read", "alice/p", "nope").await.status(),
        StatusCode::NOT_FOUND
    );
    let c = client();
    let r = c
        .get(e.at("/api/models/alice/p/xet-read-token/main"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let commit = header(
        &token(&e, WRITE, "read", "alice/p", "main").await,
        "x-xet-access-token",
    )
    .len();
    assert!(commit > 0);
    // A 40-hex revision and `None` with create_pr are accepted.
    let refs: Value = c
        .get(e.at("/api/models/alice/p/refs"))
        .bearer_auth(WRITE)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sha = refs["branches"][0]["targetCommit"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        token(&e, WRITE, "read", "alice/p", &sha).await.status(),
        StatusCode::OK
    );
    let r = c
        .get(e.at("/api/models/alice/p/xet-write-token/None?create_pr=1"))
        .bearer_auth(WRITE)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // CAS side: no token 401, garbage 401, read token on a write route 403.
    let read = token_ok(&e, WRITE, "read", "alice/p").await;
    let url = format!("{}/v1/xorbs/default/{}", read.cas, "00".repeat(32));
    let r = c.post(&url).body("x").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = c
        .post(&url)
        .bearer_auth("xet1.bogus.00")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = c
        .post(&url)
        .bearer_auth(&read.token)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = c
        .post(format!("{}/v1/shards", read.cas))
        .bearer_auth(&read.token)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Hub tokens are not CAS tokens.
    let r = c
        .get(format!(
            "{}/v1/reconstructions/{}",
            read.cas,
            "00".repeat(32)
        ))
        .bearer_auth(WRITE)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = c
        .get(format!(
            "{}/v1/reconstructions/{}",
            read.cas,
            "00".repeat(32)
        ))
        .bearer_auth(&read.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_xorb_urls_expire() {
    let e = Emu::start(&["--xet-token-ttl", "2", "--xet-url-ttl", "2"]);
    e.create_repo(WRITE, "model", "alice/t", false).await;
    // Through LFS (migrated): a 2 s token is below hf_xet's 30 s refresh margin.
    let bytes = data(300_000, 2);
    e.commit_lfs("model", "alice/t", "t.bin", &bytes).await;
    let tree: Value = client()
        .get(e.at("/api/models/alice/t/tree/main"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hash = tree
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["path"] == "t.bin")
        .and_then(|t| t["xetHash"].as_str())
        .unwrap()
        .to_string();
    let r = token_ok(&e, WRITE, "read", "alice/t").await;
    let c = client();
    let plan: Value = c
        .get(format!("{}/v2/reconstructions/{hash}", r.cas))
        .bearer_auth(&r.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fetch = plan["xorbs"].as_object().unwrap().values().next().unwrap()[0].clone();
    let url = fetch["url"].as_str().unwrap().to_string();
    let first = fetch["ranges"][0]["bytes"]["start"].as_u64().unwrap();
    let resp = c
        .get(&url)
        .header("range", format!("bytes={first}-{}", first + 99))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert!(header(&resp, "content-range").starts_with(&format!("bytes {first}-{}/", first + 99)));
    assert_eq!(resp.bytes().await.unwrap().len(), 100);
    // Suffix range: the xorb's footer end.
    let resp = c
        .get(&url)
        .header("range", "bytes=-8")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(resp.bytes().await.unwrap().len(), 8);

    // A 2 s lifetime lasts at most 3 s (expiry rounded up to a whole second).
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let resp = c
        .get(&url)
        .header("range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN, "expired xorb URL");
    let resp = c
        .get(format!("{}/v2/reconstructions/{hash}", r.cas))
        .bearer_auth(&r.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "expired CAS token");
}

#[tokio::test]
async fn v2_and_grants_can_be_switched_off() {
    let e = Emu::start(&["--no-xet-v2", "--no-xet-grants"]);
    e.create_repo(WRITE, "model", "alice/v", false).await;
    let w = token_ok(&e, WRITE, "write", "alice/v").await;
    let c = client();
    let h = "00".repeat(32);
    let r = c
        .get(format!("{}/v2/reconstructions/{h}", w.cas))
        .bearer_auth(&w.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = c
        .post(format!("{}/v1/xorb-grants/default/{h}", w.cas))
        .bearer_auth(&w.token)
        .json(&json!({"length": 1, "checksum": {"algo": "crc64nvme", "value": "1"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn lfs_uploads_are_migrated_and_no_xet_is_a_legacy_hub() {
    let e = Emu::start(&[]);
    e.create_repo(WRITE, "model", "alice/m", false).await;
    let bytes = data(200_000, 3);
    e.commit_lfs("model", "alice/m", "m.bin", &bytes).await;
    let tree: Value = client()
        .get(e.at("/api/models/alice/m/tree/main"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entry = tree
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["path"] == "m.bin")
        .unwrap();
    let xet = entry["xetHash"]
        .as_str()
        .expect("migrated LFS object has a xetHash")
        .to_string();
    assert_eq!(xet.len(), 64);
    let r = client()
        .get(e.at("/alice/m/resolve/main/m.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(header(&r, "x-xet-hash"), xet);
    let r = client().get(header(&r, "location")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.bytes().await.unwrap().as_ref() == &bytes[..]);

    let legacy = Emu::start(&["--no-xet"]);
    legacy.create_repo(WRITE, "model", "alice/m", false).await;
    legacy.commit_lfs("model", "alice/m", "m.bin", &bytes).await;
    let tree: Value = client()
        .get(legacy.at("/api/models/alice/m/tree/main"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        tree.as_array()
            .unwrap()
            .iter()
            .all(|t| t.get("xetHash").is_none()),
        "{tree}"
    );
    let r = client()
        .head(legacy.at("/alice/m/resolve/main/m.bin"))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("x-xet-hash").is_none());
    assert!(r.headers().get("link").is_none());
    assert_eq!(
        token(&legacy, WRITE, "read", "alice/m", "main")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let r = client()
        .get(format!("{}/cas/v1/reconstructions/{xet}", legacy.cdn))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let info: Value = client()
        .get(legacy.at("/api/models/alice/m"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["xetEnabled"], json!(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_corrupt_fault_flips_a_byte_of_xorb_ranges() {
    let e = Emu::start(&[]);
    e.create_repo(WRITE, "model", "alice/c", false).await;
    let ctx = ctx();
    let tmp = tempfile::tempdir().unwrap();
    let bytes = data(200_000, 4);
    let w = token_ok(&e, WRITE, "write", "alice/c").await;
    let hash = upload(&ctx, &w, tmp.path(), &bytes).await;
    let plan: Value = client()
        .get(format!("{}/v1/reconstructions/{hash}", w.cas))
        .bearer_auth(&w.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fi = plan["fetch_info"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()[0]
        .clone();
    let url = fi["url"].as_str().unwrap().to_string();
    let range = format!(
        "bytes={}-{}",
        fi["url_range"]["start"].as_u64().unwrap(),
        fi["url_range"]["end"].as_u64().unwrap()
    );
    let good = client()
        .get(&url)
        .header("range", &range)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let r = client()
        .post(format!("{}/_emulator/faults", e.url))
        .body("route=xorb,times=1,corrupt=1")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let bad = client()
        .get(&url)
        .header("range", &range)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(good.len(), bad.len());
    let diff: Vec<usize> = (0..good.len()).filter(|&i| good[i] != bad[i]).collect();
    assert_eq!(diff, vec![good.len() / 2]);
}
