//! A restarted emulator serves the same repos, refs, commits and files from its data dir.

mod emulator_support;

use emulator_support::{client, Emu, WRITE};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn snapshot(e: &Emu) -> (Value, Value, Value, Vec<u8>, Vec<u8>) {
    let c = reqwest::Client::new();
    let get = |p: &str| c.get(e.at(p)).bearer_auth(WRITE).send();
    let refs = get("/api/models/alice/m/refs?include_prs=1")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tree = get("/api/models/alice/m/tree/main?recursive=true")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let commits = get("/api/models/alice/m/commits/feature%2Fx")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let small = get("/alice/m/resolve/v1/a.txt")
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let big = get("/alice/m/resolve/main/w.bin")
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    (refs, tree, commits, small, big)
}

#[tokio::test]
async fn state_survives_restart() {
    let mut e = Emu::start(&[]);
    e.create_repo(WRITE, "model", "alice/m", true).await;
    e.create_repo(WRITE, "space", "alice/s", false).await;
    e.commit("models/alice/m", "main", &[("a.txt", Some(b"one"))])
        .await;
    let c = client();
    c.post(e.at("/api/models/alice/m/tag/main"))
        .bearer_auth(WRITE)
        .json(&json!({"tag": "v1"}))
        .send()
        .await
        .unwrap();
    c.post(e.at("/api/models/alice/m/branch/feature%2Fx"))
        .bearer_auth(WRITE)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    e.commit("models/alice/m", "feature/x", &[("a.txt", Some(b"two"))])
        .await;
    e.commit("models/alice/m", "main", &[("a.txt", None)]).await;
    e.commit_lfs("model", "alice/m", "w.bin", &vec![42u8; 300_000])
        .await;
    let before = snapshot(&e).await;
    assert_eq!(before.3, b"one");
    assert_eq!(before.4.len(), 300_000);

    e.restart();
    let after = snapshot(&e).await;
    assert_eq!(before, after);
    // Still private, still listed, still writable.
    let r = c.get(e.at("/api/models/alice/m")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let spaces: Vec<Value> = c
        .get(e.at("/api/spaces?author=alice"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(spaces[0]["id"], "alice/s");
    assert_eq!(spaces[0]["sdk"], "static");
    e.commit("models/alice/m", "main", &[("b.txt", Some(b"after"))])
        .await;
    let commits: Vec<Value> = c
        .get(e.at("/api/models/alice/m/commits/main"))
        .bearer_auth(WRITE)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(commits.len(), 5);
}
