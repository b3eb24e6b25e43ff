//! Whether a mount is writable, and where its commits go.
//!
//! Writable = a single-repo mount of a branch (the default branch included) or of a PR ref,
//! online, with a token that may write, and not `--read-only`. Tags, commit ids and
//! `refs/convert/*` stay read-only, and so do whole-Hub mounts. A single-bucket mount is
//! writable with a write token (no branch to check). The decision is taken once at
//! mount time; each reason for read-only is told to the user.

use crate::commit::Target;
use crate::hub::HubClient;
use crate::repo::RepoRef;

/// Default branch name: the Hub's clients know no other (hub-api.md §1.4).
const DEFAULT_BRANCH: &str = "main";

/// The answer: Ok(target) writable; Err(reason) read-only, for a reason worth telling (empty
/// when the repo itself cannot be read: the mount then fails with that error).
pub async fn decide(
    client: &HubClient,
    repo: &RepoRef,
    revision: Option<&str>,
    create_pr: bool,
) -> Result<Target, String> {
    if repo.repo_type == crate::repo::RepoType::Bucket {
        return decide_bucket(client, repo).await;
    }
    let revision = revision.unwrap_or(DEFAULT_BRANCH);
    // Anonymous mounts are read-only whatever the revision: decided without a round trip.
    if !client.is_authenticated() {
        return Err(
            "no token: mounted read-only (set HF_TOKEN or pass --token-file to write)".into(),
        );
    }
    // Both questions at once: every round trip here delays the mount.
    let (refs, me) = tokio::join!(client.list_refs(repo, true), client.whoami());
    // A repo that cannot be read fails the mount right after with the real reason; say
    // nothing here (an empty reason) so the user gets one line.
    let refs = refs.map_err(|e| {
        tracing::debug!("listing refs of {repo}: {e}");
        String::new()
    })?;
    let is_branch = refs.branches.iter().any(|b| b.name == revision);
    let is_pr = refs
        .pull_requests
        .iter()
        .flatten()
        .any(|p| p.reference == revision || format!("refs/pr/{}", p.name) == revision);
    if !is_branch && !is_pr {
        return Err(format!(
            "{revision} is not a branch of {repo} (tag, commit or convert ref): mounted read-only"
        ));
    }
    match me {
        Ok(me) if me.token_role() == Some("read") => {
            return Err(format!(
                "the token of {} is read-only: mounted read-only (use a write token, or \
                 --create-pr with a token allowed to open pull requests)",
                me.name
            ))
        }
        Ok(_) => {}
        Err(e) => return Err(format!("cannot check the token ({e}): mounted read-only")),
    }
    Ok(Target {
        repo: repo.clone(),
        revision: revision.to_string(),
        // A PR ref is committed to directly.
        create_pr: create_pr && is_branch,
    })
}

/// A bucket is writable with a token whose role is not `read` (the batch API then decides
/// per bucket: a stranger's bucket answers 403 and the changes stay staged, reported).
async fn decide_bucket(client: &HubClient, repo: &RepoRef) -> Result<Target, String> {
    if !client.is_authenticated() {
        return Err(
            "no token: mounted read-only (set HF_TOKEN or pass --token-file to write)".into(),
        );
    }
    match client.whoami().await {
        Ok(me) if me.token_role() == Some("read") => Err(format!(
            "the token of {} is read-only: mounted read-only (use a write token)",
            me.name
        )),
        Ok(_) => Ok(Target {
            repo: repo.clone(),
            // Buckets have no branches: a fixed name keeps the staging identity stable.
            revision: "bucket".into(),
            create_pr: false,
        }),
        Err(e) => Err(format!("cannot check the token ({e}): mounted read-only")),
    }
}

/// Identity of a branch's staging area: the same endpoint, repo and branch share it.
pub fn staging_identity(endpoint: &str, target: &Target) -> String {
    format!(
        "{}\n{}/{}\n{}{}",
        endpoint.trim_end_matches('/'),
        target.repo.repo_type.plural(),
        target.repo.id.folded(),
        target.revision,
        if target.create_pr { "\ncreate-pr" } else { "" }
    )
}
