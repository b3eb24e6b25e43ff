//! The authorization matrix of hub-api.md §7.2: anonymous vs other users on private repos,
//! read tokens, unknown tokens, org namespaces.

mod emulator_support;

use std::time::Duration;

use emulator_support::{client, header, Emu, BOB, READ, WRITE};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn private_repos_look_missing() {
    let e = Emu::start(&[]);
    assert_eq!(
        e.create_repo(WRITE, "model", "alice/secret", true)
            .await
            .status(),
        StatusCode::OK
    );
    let c = client();
    for path in [
        "/api/models/alice/secret",
        "/alice/secret/resolve/main/.gitattributes",
        "/api/models/alice/secret/tree/main",
    ] {
        // Anonymous: 401 with the Hub's exact signals.
        let r = c.get(e.at(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(
            header(&r, "x-error-message"),
            "Invalid username or password."
        );
        assert_eq!(
            header(&r, "www-authenticate"),
            "Bearer realm=\"Authentication required\", charset=\"UTF-8\""
        );
        assert_eq!(
            r.json::<serde_json::Value>().await.unwrap()["error"],
            "Invalid username or password."
        );
        // Another user: 404 RepoNotFound, like a missing repo.
        let r = c.get(e.at(path)).bearer_auth(BOB).send().await.unwrap();
        assert_eq!(
            (r.status(), header(&r, "x-error-code")),
            (StatusCode::NOT_FOUND, "RepoNotFound"),
            "{path}"
        );
        // The owner, even with a read token.
        let r = c.get(e.at(path)).bearer_auth(READ).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
    // Missing repos answer the same as private ones.
    let r = c.get(e.at("/api/models/alice/none")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = c
        .get(e.at("/api/models/alice/none"))
        .bearer_auth(BOB)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn tokens_and_roles() {
    let e = Emu::start(&[]);
    e.create_repo(WRITE, "model", "alice/pub", false).await;
    let c = client();
    // Unknown tokens are refused everywhere, with a message clients do not read as "not found".
    let r = c
        .get(e.at("/api/models/alice/pub"))
        .bearer_auth("hf_wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&r, "x-error-message"),
        "Invalid credentials in Authorization header"
    );
    // A read token cannot write; another user cannot write to alice's repo.
    let branch = |token: &'static str| {
        c.post(e.at("/api/models/alice/pub/branch/b"))
            .bearer_auth(token)
            .json(&json!({}))
            .send()
    };
    assert_eq!(branch(READ).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(branch(BOB).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(branch(WRITE).await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        e.create_repo(READ, "model", "alice/x", false)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let anon = c
        .post(e.at("/api/repos/create"))
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), StatusCode::UNAUTHORIZED);
    // Orgs: members create and write; others may not.
    assert_eq!(
        e.create_repo(WRITE, "dataset", "acme/data", false)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        e.create_repo(BOB, "dataset", "acme/bob", false)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        e.create_repo(BOB, "dataset", "alice/bob", false)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    // whoami reports the role.
    let me: serde_json::Value = c
        .get(e.at("/api/whoami-v2"))
        .bearer_auth(READ)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["auth"]["accessToken"]["role"], "read");
    assert_eq!(me["orgs"][0]["name"], "acme");
    assert_eq!(
        c.get(e.at("/api/whoami-v2")).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn gated_repos_hide_content_but_not_metadata() {
    let e = Emu::start(&[]);
    e.create_repo(WRITE, "model", "alice/gated", false).await;
    let c = client();
    let r = c
        .put(e.at("/api/models/alice/gated/settings"))
        .bearer_auth(WRITE)
        .json(&json!({"gated": "manual"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let info: serde_json::Value = c
        .get(e.at("/api/models/alice/gated"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["gated"], "manual");
    let file = e.at("/alice/gated/resolve/main/.gitattributes");
    let r = c.get(&file).send().await.unwrap();
    assert_eq!(
        (r.status(), header(&r, "x-error-code")),
        (StatusCode::UNAUTHORIZED, "GatedRepo")
    );
    let r = c.get(&file).bearer_auth(BOB).send().await.unwrap();
    assert_eq!(
        (r.status(), header(&r, "x-error-code")),
        (StatusCode::FORBIDDEN, "GatedRepo")
    );
    assert_eq!(
        c.get(&file)
            .bearer_auth(WRITE)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn account_endpoints_answer_like_the_hub() {
    let e = Emu::start(&[]);
    e.create_repo(WRITE, "model", "alice/m", true).await;
    let c = client();
    // Xet tokens in the Hub's JSON shape and as X-Xet-* headers.
    let r = c
        .get(e.at("/api/models/alice/m/xet-read-token/main"))
        .bearer_auth(READ)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().contains_key("x-xet-access-token"));
    let tok: serde_json::Value = r.json().await.unwrap();
    assert!(tok["casUrl"].is_string() && tok["accessToken"].is_string() && tok["exp"].is_u64());
    let r = c
        .get(e.at("/api/models/alice/m/xet-write-token/main"))
        .bearer_auth(READ)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = c
        .get(e.at("/api/models/alice/m/xet-read-token/main"))
        .bearer_auth(BOB)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // validate-yaml accepts any card; auth-check reflects access.
    let r = c
        .post(e.at("/api/validate-yaml"))
        .json(&json!({"content": "---\nlicense: mit\n---\n", "repoType": "model"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let check = |token: &'static str, path: &'static str| {
        c.get(e.at(&format!("/api/models/alice/m/auth-check{path}")))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(check(READ, "").await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        check(READ, "/write").await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        check(WRITE, "/write").await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        check(BOB, "").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

/// An emulator with alice's repo `alice/m`, and the address a raw socket connects to.
async fn emu_with_repo() -> (Emu, String) {
    let e = Emu::start(&[]);
    e.create_repo(WRITE, "model", "alice/m", false).await;
    let addr = e.url.trim_start_matches("http://").to_string();
    (e, addr)
}

/// The head of a POST creating branch `b` of alice/m with alice's read token, which the
/// emulator refuses (403) from the headers alone. `headers`: the body's own, each ending in CRLF.
fn refused_branch_head(addr: &str, headers: &str) -> String {
    format!(
        "POST /api/models/alice/m/branch/b HTTP/1.1\r\nHost: {addr}\r\n\
         Authorization: Bearer {READ}\r\n{headers}\r\n"
    )
}

fn io(e: std::io::Error) -> String {
    e.to_string()
}

/// A write refused before its body is read must leave the connection fit for the next request,
/// as a production front end does. The emulator refuses a read token's branch creation from the
/// headers alone; if it then dropped the unread body, hyper would close the connection after the
/// 403, and a client reusing it from its pool would see "Server disconnected without sending a
/// response" (the official client did, in CI). The body here comes late, after the answer.
#[tokio::test]
async fn a_write_refused_before_its_body_keeps_the_connection() {
    use std::io::{BufRead, BufReader, Read, Write};
    let (_e, addr) = emu_with_repo().await;
    let outcome = tokio::task::spawn_blocking(move || -> Result<(), String> {
        let s = std::net::TcpStream::connect(&addr).map_err(io)?;
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .map_err(io)?;
        let mut w = s.try_clone().map_err(io)?;
        let mut r = BufReader::new(s);
        // Reads one response whose body is delimited by Content-Length; returns its status line.
        let response = |r: &mut BufReader<std::net::TcpStream>| -> Result<String, String> {
            let mut status = String::new();
            r.read_line(&mut status).map_err(io)?;
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                r.read_line(&mut line).map_err(io)?;
                if line.is_empty() || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().map_err(|_| line.clone())?;
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).map_err(io)?;
            Ok(status.trim().to_string())
        };
        let body = format!("{{\"startingPoint\": \"main\"{}}}", " ".repeat(1 << 20));
        let head = refused_branch_head(
            &addr,
            &format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ),
        );
        w.write_all(head.as_bytes()).map_err(io)?;
        // Long enough for the 403 to go out before the body does.
        std::thread::sleep(Duration::from_millis(300));
        w.write_all(body.as_bytes()).map_err(io)?;
        let first = response(&mut r)?;
        if !first.starts_with("HTTP/1.1 403") {
            return Err(format!("first answer: {first}"));
        }
        write!(
            w,
            "GET /api/models/alice/m HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {READ}\r\n\r\n"
        )
        .map_err(io)?;
        let second = response(&mut r).map_err(|e| format!("second request: {e}"))?;
        if !second.starts_with("HTTP/1.1 200") {
            return Err(format!("second answer: {second}"));
        }
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(outcome, Ok(()));
}

/// The drain has bounds: a refused request whose body never ends is cut off (10 s), and one
/// that announced `Expect: 100-continue` is not drained at all (its client may never send the
/// body, and the bytes that follow would be its next request).
#[tokio::test]
async fn refused_bodies_are_drained_within_bounds() {
    use std::io::{Read, Write};
    let (_e, addr) = emu_with_repo().await;
    let outcome = tokio::task::spawn_blocking(move || -> Result<(), String> {
        // An endless chunked body: the server answers, drains for a while, then closes.
        let mut s = std::net::TcpStream::connect(&addr).map_err(io)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(io)?;
        let head = refused_branch_head(&addr, "Transfer-Encoding: chunked\r\n");
        s.write_all(head.as_bytes()).map_err(io)?;
        let started = std::time::Instant::now();
        let chunk = format!("{:x}\r\n{}\r\n", 4096, "x".repeat(4096));
        let mut cut = false;
        while started.elapsed() < Duration::from_secs(25) {
            if s.write_all(chunk.as_bytes()).is_err() {
                cut = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let waited = started.elapsed();
        if !cut || waited < Duration::from_secs(8) {
            return Err(format!("endless body: cut {cut} after {waited:?}"));
        }
        // Expect: 100-continue, refused, body never sent: the connection is closed after the
        // answer instead of waiting for a body.
        let mut s = std::net::TcpStream::connect(&addr).map_err(io)?;
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(io)?;
        let head = refused_branch_head(
            &addr,
            "Content-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 100\r\n",
        );
        s.write_all(head.as_bytes()).map_err(io)?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer)
            .map_err(|e| format!("no close after the answer: {e}"))?;
        if !answer.starts_with(b"HTTP/1.1 403") {
            return Err(format!("answer {:?}", String::from_utf8_lossy(&answer)));
        }
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(outcome, Ok(()));
}
