//! Shared helpers of the `emulator_*` integration tests: start the `hub-emulator` binary on a
//! temp data dir, and drive it over HTTP like a client would.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine;
use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const WRITE: &str = "hf_alice_write";
pub const READ: &str = "hf_alice_read";
pub const BOB: &str = "hf_bob_write";

pub struct Emu {
    child: Option<Child>,
    pub url: String,
    pub cdn: String,
    pub data: PathBuf,
    args: Vec<String>,
    _tmp: Option<tempfile::TempDir>,
}

fn spawn(data: &Path, args: &[String]) -> (Child, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hub-emulator"))
        .arg("--data")
        .arg(data)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn hub-emulator");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("emulator ready line within 20 s");
    // `listening on http://HOST:PORT (cdn http://HOST:PORT)`
    let rest = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| {
            panic!(
                "{} gave no ready line (got {line:?}); is it this worktree's build?",
                env!("CARGO_BIN_EXE_hub-emulator")
            )
        });
    let (url, cdn) = rest.split_once(" (cdn ").expect("cdn in ready line");
    (
        child,
        url.to_string(),
        cdn.trim_end_matches(')').to_string(),
    )
}

impl Emu {
    /// Starts an emulator with alice (write + read tokens), bob (write) and `extra` flags.
    pub fn start(extra: &[&str]) -> Emu {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().join("data");
        let mut e = Emu::start_in(&data, extra);
        e._tmp = Some(tmp);
        e
    }

    pub fn start_in(data: &Path, extra: &[&str]) -> Emu {
        let mut args: Vec<String> = vec![
            "--token".into(),
            format!("alice:write:{WRITE}"),
            "--token".into(),
            format!("alice:read:{READ}"),
            "--token".into(),
            format!("bob:write:{BOB}"),
            "--org".into(),
            "acme:alice".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let (child, url, cdn) = spawn(data, &args);
        Emu {
            child: Some(child),
            url,
            cdn,
            data: data.to_path_buf(),
            args,
            _tmp: None,
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills the process and starts a new one on the same data dir (new ports).
    pub fn restart(&mut self) {
        self.stop();
        let (child, url, cdn) = spawn(&self.data, &self.args);
        self.child = Some(child);
        self.url = url;
        self.cdn = cdn;
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub async fn stats(&self) -> Value {
        client()
            .get(self.at("/_emulator/stats"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn reset_stats(&self) {
        client()
            .post(self.at("/_emulator/stats/reset"))
            .send()
            .await
            .unwrap();
    }

    pub async fn create_repo(
        &self,
        token: &str,
        repo_type: &str,
        id: &str,
        private: bool,
    ) -> Response {
        let (org, name) = id.split_once('/').unwrap();
        let mut body =
            json!({"name": name, "organization": org, "type": repo_type, "private": private});
        if repo_type == "space" {
            body["sdk"] = json!("static");
        }
        client()
            .post(self.at("/api/repos/create"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Commits regular files (and deletions, for `None` contents) to `rev` as alice.
    pub async fn commit(
        &self,
        repo_api: &str,
        rev: &str,
        files: &[(&str, Option<&[u8]>)],
    ) -> Value {
        let mut body =
            json!({"key": "header", "value": {"summary": "test commit", "description": ""}})
                .to_string();
        for (path, content) in files {
            let line = match content {
                Some(c) => json!({"key": "file", "value": {
                    "path": path, "encoding": "base64",
                    "content": base64::engine::general_purpose::STANDARD.encode(c)}}),
                None => json!({"key": "deletedFile", "value": {"path": path}}),
            };
            body.push('\n');
            body.push_str(&line.to_string());
        }
        let r = client()
            .post(self.at(&format!(
                "/api/{repo_api}/commit/{}",
                hub_wire::repo::encode_revision(rev)
            )))
            .bearer_auth(WRITE)
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::OK,
            "commit failed: {:?}",
            r.text().await
        );
        r.json().await.unwrap()
    }

    /// Uploads `data` as an LFS object through the batch API (basic or multipart) and commits it.
    pub async fn commit_lfs(&self, repo_type: &str, id: &str, path: &str, data: &[u8]) -> Value {
        let oid = hex::encode(Sha256::digest(data));
        let prefix = if repo_type == "model" {
            String::new()
        } else {
            format!("{repo_type}s/")
        };
        let batch: Value = client()
            .post(self.at(&format!("/{prefix}{id}.git/info/lfs/objects/batch")))
            .bearer_auth(WRITE)
            .json(
                &json!({"operation": "upload", "transfers": ["basic", "multipart"],
                          "objects": [{"oid": oid, "size": data.len()}], "hash_algo": "sha256"}),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let obj = &batch["objects"][0];
        if let Some(upload) = obj["actions"]["upload"].as_object() {
            let header = upload["header"].as_object().cloned().unwrap_or_default();
            let href = upload["href"].as_str().unwrap();
            if let Some(chunk) = header.get("chunk_size") {
                let chunk: usize = chunk.as_str().unwrap().parse().unwrap();
                let mut parts: Vec<(u32, String)> = header
                    .iter()
                    .filter(|(k, _)| k.bytes().all(|b| b.is_ascii_digit()))
                    .map(|(k, v)| (k.parse().unwrap(), v.as_str().unwrap().to_string()))
                    .collect();
                parts.sort();
                let mut done = Vec::new();
                for (n, url) in parts {
                    let start = (n as usize - 1) * chunk;
                    let piece = data[start..(start + chunk).min(data.len())].to_vec();
                    let r = client().put(url).body(piece).send().await.unwrap();
                    assert_eq!(r.status(), StatusCode::OK);
                    let etag = r.headers()["etag"].to_str().unwrap().to_string();
                    done.push(json!({"partNumber": n, "etag": etag}));
                }
                let r = client()
                    .post(href)
                    .json(&json!({"oid": oid, "parts": done}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
            } else {
                let r = client().put(href).body(data.to_vec()).send().await.unwrap();
                assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
            }
        }
        let body = format!(
            "{}\n{}",
            json!({"key": "header", "value": {"summary": format!("add {path}")}}),
            json!({"key": "lfsFile", "value": {"path": path, "algo": "sha256", "oid": oid, "size": data.len()}})
        );
        let r = client()
            .post(self.at(&format!("/api/{repo_type}s/{id}/commit/main")))
            .bearer_auth(WRITE)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
        r.json().await.unwrap()
    }
}

impl Drop for Emu {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A client that never follows redirects (tests look at every hop) and times out.
pub fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

pub fn header<'a>(r: &'a Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// git's blob id, computed independently of the emulator's code.
pub fn git_blob(data: &[u8]) -> String {
    let mut h = sha1::Sha1::new();
    h.update(format!("blob {}\0", data.len()));
    h.update(data);
    hex::encode(h.finalize())
}
