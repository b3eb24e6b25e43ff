//! Network shaping (latency, per-connection bandwidth, changed at run time) and fault injection
//! (status, Retry-After, cut bodies, stalls), plus the control routes that drive them.

mod emulator_support;

use std::time::{Duration, Instant};

use emulator_support::{client, header, Emu, WRITE};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn with_file(extra: &[&str], size: usize) -> Emu {
    let e = Emu::start(extra);
    e.create_repo(WRITE, "model", "alice/m", false).await;
    e.commit(
        "models/alice/m",
        "main",
        &[("f.txt", Some(&vec![7u8; size]))],
    )
    .await;
    e
}

#[tokio::test]
async fn latency_is_added_to_every_response_but_control_routes() {
    // A latency much longer than a loopback request takes on a loaded CI machine, so that
    // "shaped" and "not shaped" are told apart by a wide margin (2.5 s vs 3 s added).
    let e = with_file(&["--latency-ms", "3000"], 10).await;
    let c = client();
    let t = Instant::now();
    c.get(e.at("/api/models/alice/m")).send().await.unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(3000),
        "{:?}",
        t.elapsed()
    );
    let t = Instant::now();
    c.get(e.at("/_emulator/stats")).send().await.unwrap();
    assert!(
        t.elapsed() < Duration::from_millis(2500),
        "control routes are not shaped"
    );
    // Turned off at run time.
    c.post(e.at("/_emulator/shaping"))
        .json(&json!({"latency_ms": 0, "bandwidth": null}))
        .send()
        .await
        .unwrap();
    let t = Instant::now();
    c.get(e.at("/api/models/alice/m")).send().await.unwrap();
    assert!(t.elapsed() < Duration::from_millis(2500));
}

#[tokio::test]
async fn bandwidth_caps_each_connection() {
    // 4 MiB at 1 MiB/s: 4 s capped, against well under a second uncapped, so a loaded CI
    // machine cannot blur the two.
    let size = 4 << 20;
    let e = with_file(&["--bandwidth", "1M"], size).await;
    let c = client();
    let t = Instant::now();
    let body = c
        .get(e.at("/alice/m/resolve/main/f.txt"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let took = t.elapsed();
    assert_eq!(body.len(), size);
    // 4 MiB at 1 MiB/s: about 4 s (minus one 16 KiB burst).
    assert!(took >= Duration::from_millis(3500), "{took:?}");
    assert!(took < Duration::from_secs(60), "{took:?}");
    // Raised at run time: much faster.
    let r = c
        .post(e.at("/_emulator/shaping"))
        .json(&json!({"latency_ms": 0, "bandwidth": "64M"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["bandwidth"], 64 << 20);
    let t = Instant::now();
    c.get(e.at("/alice/m/resolve/main/f.txt"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    // At the old cap this takes 4 s.
    assert!(
        t.elapsed() < Duration::from_millis(2500),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn status_faults_hit_every_nth_matching_request() {
    let e = with_file(&["--fault", "route=content,every=3,status=503"], 10).await;
    let c = client();
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(
            c.get(e.at("/alice/m/resolve/main/f.txt"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
        // API calls are not content and do not count.
        assert_eq!(
            c.get(e.at("/api/models/alice/m"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
    }
    assert_eq!(statuses, [200, 200, 503, 200, 200, 503]);
    let s = e.stats().await;
    assert_eq!(s["faults_injected"], 2);
    // Replaced at run time: 429 with Retry-After, at most twice.
    let r = c
        .post(e.at("/_emulator/faults"))
        .body("route=resolve,every=1,times=2,status=429,retry-after=1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = c
        .get(e.at("/alice/m/resolve/main/f.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&r, "retry-after"), "1");
    assert!(header(&r, "ratelimit").contains("r=0;t=1"));
    c.get(e.at("/alice/m/resolve/main/f.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        c.get(e.at("/alice/m/resolve/main/f.txt"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let listed: Value = c
        .get(e.at("/_emulator/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["faults"][0]["injected"], 2);
    c.delete(e.at("/_emulator/faults")).send().await.unwrap();
    let r = c
        .post(e.at("/_emulator/faults"))
        .body("route=bogus,status=500")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn cut_bodies_and_stalls() {
    let e = with_file(
        &["--fault", "route=content,every=2,cut-after=1000"],
        100_000,
    )
    .await;
    let c = client();
    let url = e.at("/alice/m/resolve/main/f.txt");
    assert_eq!(
        c.get(&url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .len(),
        100_000
    );
    // Headers promise 100000 bytes; the connection dies after 1000.
    let mut r = c.get(&url).send().await.unwrap();
    assert_eq!(header(&r, "content-length"), "100000");
    let mut received = 0;
    let cut = loop {
        match r.chunk().await {
            Ok(Some(chunk)) => received += chunk.len(),
            Ok(None) => break false,
            Err(_) => break true,
        }
    };
    assert!(cut, "a cut body must surface as an error");
    assert_eq!(received, 1000);

    c.post(e.at("/_emulator/faults"))
        .body("route=api,path=/tree/,stall=3")
        .send()
        .await
        .unwrap();
    let t = Instant::now();
    let r = c
        .get(e.at("/api/models/alice/m/tree/main"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(t.elapsed() >= Duration::from_millis(3000));
    // Unstalled: far under the 3 s stall, even on a loaded CI machine.
    let t = Instant::now();
    c.get(e.at("/api/models/alice/m")).send().await.unwrap();
    assert!(
        t.elapsed() < Duration::from_millis(2500),
        "path= limits the rule"
    );
}

#[tokio::test]
async fn prob_faults_are_reproducible_with_a_seed() {
    let run = |seed: &'static str| async move {
        let e = with_file(
            &[
                "--fault",
                "route=content,prob=0.5,status=500",
                "--fault-seed",
                seed,
            ],
            1,
        )
        .await;
        let c = client();
        let mut out = Vec::new();
        for _ in 0..20 {
            out.push(
                c.get(e.at("/alice/m/resolve/main/f.txt"))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16(),
            );
        }
        out
    };
    let a = run("42").await;
    assert_eq!(a, run("42").await);
    let failures = a.iter().filter(|s| **s == 500).count();
    assert!((3..=17).contains(&failures), "{a:?}");
}

#[tokio::test]
async fn stats_count_requests_and_content_bytes() {
    let e = with_file(&[], 5000).await;
    e.reset_stats().await;
    let c = client();
    c.get(e.at("/alice/m/resolve/main/f.txt"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    c.get(e.at("/alice/m/resolve/main/f.txt"))
        .header("range", "bytes=0-99")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    c.head(e.at("/alice/m/resolve/main/f.txt"))
        .send()
        .await
        .unwrap();
    c.get(e.at("/api/models/alice/m/tree/main"))
        .send()
        .await
        .unwrap();
    let s = e.stats().await;
    assert_eq!(s["requests"], 4);
    assert_eq!(s["resolve_requests"], 3);
    assert_eq!(s["api_requests"], 1);
    assert_eq!(s["bytes_served"], 5100);
    assert_eq!(s["routes"]["tree"], 1);
}
