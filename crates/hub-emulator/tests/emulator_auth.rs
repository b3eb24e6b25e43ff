//! The authorization matrix of hub-api.md §7.2: anonymous vs other users on private repos,
//! read tokens, unknown tokens, org namespaces.

mod emulator_support;

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
    // Xet tokens in the Hub's JSON shape, but no Xet headers: clients stay on plain HTTP.
    let r = c
        .get(e.at("/api/models/alice/m/xet-read-token/main"))
        .bearer_auth(READ)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().keys().all(|k| !k.as_str().starts_with("x-xet")));
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
