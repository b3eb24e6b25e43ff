//! Repository, branch and tag management (hub-api.md §6), for tests and tools.
//!
//! These calls change state and are not idempotent, so they are retried only when the Hub
//! surely did nothing (see `RetryMode::Safe`). A name that is taken is
//! [`HubError::AlreadyExists`].

use reqwest::Method;
use serde_json::json;

use super::client::HubClient;
use super::error::HubError;
use super::transport::RetryMode;
use crate::repo::{encode_revision, RepoRef, RepoType};

impl HubClient {
    /// `POST /api/repos/create`; returns the repo URL the Hub answers. Spaces are created with
    /// the `static` SDK.
    pub async fn create_repo(&self, repo: &RepoRef, private: bool) -> Result<String, HubError> {
        let ctx = self.repo_ctx(repo, None, None);
        let r = async {
            let mut body = json!({
                "name": repo.id.name,
                "organization": repo.id.namespace,
                "type": repo.repo_type.as_str(),
                // Older clients send `private`, 2.x `visibility`: send both.
                "private": private,
                "visibility": if private { "private" } else { "public" },
            });
            if repo.repo_type == RepoType::Space {
                body["sdk"] = json!("static");
            }
            let req = self
                .api_request(Method::POST, self.url("/api/repos/create")?, &ctx)
                .body(body.to_string(), "application/json")
                .retry(RetryMode::Safe);
            let answer: serde_json::Value = self.call_json(&req).await?;
            answer
                .get("url")
                .and_then(|u| u.as_str())
                .map(str::to_string)
                .ok_or_else(|| HubError::protocol(&ctx.target(), "create answer without url"))
        }
        .await;
        self.count(r)
    }

    /// `DELETE /api/repos/delete`.
    pub async fn delete_repo(&self, repo: &RepoRef) -> Result<(), HubError> {
        let ctx = self.repo_ctx(repo, None, None);
        let r = async {
            let body = json!({
                "name": repo.id.name,
                "organization": repo.id.namespace,
                "type": repo.repo_type.as_str(),
            });
            let req = self
                .api_request(Method::DELETE, self.url("/api/repos/delete")?, &ctx)
                .body(body.to_string(), "application/json")
                .retry(RetryMode::Safe);
            self.call_discarding(&req).await
        }
        .await;
        self.count(r)
    }

    /// `POST /api/{type}s/{repo}/branch/{branch}` from `starting_point` (default: `main`).
    pub async fn create_branch(
        &self,
        repo: &RepoRef,
        branch: &str,
        starting_point: Option<&str>,
    ) -> Result<(), HubError> {
        let ctx = self.repo_ctx(repo, Some(branch), None);
        let r = async {
            let body = match starting_point {
                Some(start) => json!({ "startingPoint": start }),
                None => json!({}),
            };
            let url = self.url(&format!(
                "{}/branch/{}",
                repo.api_path(),
                encode_revision(branch)
            ))?;
            let req = self
                .api_request(Method::POST, url, &ctx)
                .body(body.to_string(), "application/json")
                .retry(RetryMode::Safe);
            self.call_discarding(&req).await
        }
        .await;
        self.count(r)
    }

    /// `DELETE /api/{type}s/{repo}/branch/{branch}`.
    pub async fn delete_branch(&self, repo: &RepoRef, branch: &str) -> Result<(), HubError> {
        let ctx = self.repo_ctx(repo, Some(branch), None);
        let r = async {
            let url = self.url(&format!(
                "{}/branch/{}",
                repo.api_path(),
                encode_revision(branch)
            ))?;
            let req = self
                .api_request(Method::DELETE, url, &ctx)
                .retry(RetryMode::Safe);
            self.call_discarding(&req).await
        }
        .await;
        self.count(r)
    }

    /// `POST /api/{type}s/{repo}/tag/{revision}` creating `tag` on `revision`.
    pub async fn create_tag(
        &self,
        repo: &RepoRef,
        tag: &str,
        revision: &str,
    ) -> Result<(), HubError> {
        let ctx = self.repo_ctx(repo, Some(revision), None);
        let r = async {
            let url = self.url(&format!(
                "{}/tag/{}",
                repo.api_path(),
                encode_revision(revision)
            ))?;
            let req = self
                .api_request(Method::POST, url, &ctx)
                .body(json!({ "tag": tag }).to_string(), "application/json")
                .retry(RetryMode::Safe);
            self.call_discarding(&req).await
        }
        .await;
        self.count(r)
    }

    /// `DELETE /api/{type}s/{repo}/tag/{tag}`.
    pub async fn delete_tag(&self, repo: &RepoRef, tag: &str) -> Result<(), HubError> {
        let ctx = self.repo_ctx(repo, Some(tag), None);
        let r = async {
            let url = self.url(&format!("{}/tag/{}", repo.api_path(), encode_revision(tag)))?;
            let req = self
                .api_request(Method::DELETE, url, &ctx)
                .retry(RetryMode::Safe);
            self.call_discarding(&req).await
        }
        .await;
        self.count(r)
    }
}
