//! Who is calling and what they may do (hub-api.md §2, §7.2): bearer tokens map to a user and a
//! role; public repos are readable by anyone, private ones only by their namespace's owner or
//! org members; writing needs a write token of such a member.

use std::collections::HashMap;

use axum::http::{header, HeaderMap};

use super::config::{OrgSpec, Role, TokenSpec};
use super::server::error::ApiError;
use super::store::repo::RepoMeta;

/// The authenticated user behind a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub role: Role,
    /// Display name of the token (whoami `auth.accessToken.displayName`).
    pub token_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Anonymous,
    User(User),
}

impl Caller {
    pub fn user(&self) -> Option<&User> {
        match self {
            Caller::User(u) => Some(u),
            Caller::Anonymous => None,
        }
    }
}

pub struct Auth {
    tokens: HashMap<String, User>,
    /// Folded org name → (canonical name, folded member names).
    orgs: HashMap<String, (String, Vec<String>)>,
}

impl Auth {
    pub fn new(tokens: &[TokenSpec], orgs: &[OrgSpec]) -> Auth {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        let tokens = tokens
            .iter()
            .map(|t| {
                let n = seen.entry(t.user.as_str()).or_default();
                *n += 1;
                let user = User {
                    name: t.user.clone(),
                    role: t.role,
                    token_name: format!("{}-{}-{}", t.user, t.role.as_str(), n),
                };
                (t.secret.clone(), user)
            })
            .collect();
        let orgs = orgs
            .iter()
            .map(|o| {
                let members = o.members.iter().map(|m| m.to_ascii_lowercase()).collect();
                (o.name.to_ascii_lowercase(), (o.name.clone(), members))
            })
            .collect();
        Auth { tokens, orgs }
    }

    /// Identifies the caller; an unknown token is an error (as on the Hub), not anonymity.
    pub fn identify(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Ok(Caller::Anonymous);
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(ApiError::invalid_credentials)?;
        self.tokens
            .get(token)
            .cloned()
            .map(Caller::User)
            .ok_or_else(ApiError::invalid_credentials)
    }

    /// Canonical names of the orgs `user` belongs to.
    pub fn orgs_of(&self, user: &str) -> Vec<String> {
        let u = user.to_ascii_lowercase();
        let mut out: Vec<String> = self
            .orgs
            .values()
            .filter(|(_, members)| members.contains(&u))
            .map(|(name, _)| name.clone())
            .collect();
        out.sort();
        out
    }

    /// The canonical casing of an org name, if it is one.
    pub fn org_name(&self, ns: &str) -> Option<&str> {
        self.orgs
            .get(&ns.to_ascii_lowercase())
            .map(|(n, _)| n.as_str())
    }

    /// True if `user` is `ns` or a member of org `ns`.
    pub fn in_namespace(&self, user: &str, ns: &str) -> bool {
        user.eq_ignore_ascii_case(ns)
            || self
                .orgs
                .get(&ns.to_ascii_lowercase())
                .is_some_and(|(_, m)| m.contains(&user.to_ascii_lowercase()))
    }

    /// True if `user` owns the repo (its namespace, or its creator for legacy one-part ids).
    fn is_member(&self, meta: &RepoMeta, user: &str) -> bool {
        match meta.namespace() {
            Some(ns) => self.in_namespace(user, ns),
            None => meta.creator.eq_ignore_ascii_case(user),
        }
    }

    pub fn can_read(&self, meta: &RepoMeta, caller: &Caller) -> bool {
        !meta.private || caller.user().is_some_and(|u| self.is_member(meta, &u.name))
    }

    /// Read access, failing like the Hub: anonymous → 401, others → 404 (private = missing).
    pub fn check_read(&self, meta: &RepoMeta, caller: &Caller) -> Result<(), ApiError> {
        if self.can_read(meta, caller) {
            Ok(())
        } else {
            Err(ApiError::repo_not_found(caller))
        }
    }

    /// File content of gated repos needs membership (nobody else is ever granted access here).
    pub fn check_content(&self, meta: &RepoMeta, caller: &Caller) -> Result<(), ApiError> {
        self.check_read(meta, caller)?;
        if meta.gated == serde_json::Value::Bool(false) || meta.gated.is_null() {
            return Ok(());
        }
        match caller.user() {
            Some(u) if self.is_member(meta, &u.name) => Ok(()),
            _ => Err(ApiError::gated(&meta.id, caller)),
        }
    }

    /// Write access to the repo's branches and settings.
    pub fn check_write(&self, meta: &RepoMeta, caller: &Caller) -> Result<(), ApiError> {
        self.check_read(meta, caller)?;
        let user = caller.user().ok_or_else(ApiError::anonymous)?;
        if user.role != Role::Write {
            return Err(ApiError::forbidden(
                "You have read access but not the required permissions for this operation.",
            ));
        }
        if !self.is_member(meta, &user.name) {
            return Err(ApiError::forbidden(format!(
                "You don't have the rights to write to {}",
                meta.id
            )));
        }
        Ok(())
    }

    /// Opening or updating a pull request: any reader with a write token.
    pub fn check_pr(&self, meta: &RepoMeta, caller: &Caller) -> Result<(), ApiError> {
        self.check_read(meta, caller)?;
        match caller.user() {
            None => Err(ApiError::anonymous()),
            Some(u) if u.role != Role::Write => Err(ApiError::forbidden(
                "You have read access but not the required permissions for this operation.",
            )),
            Some(_) => Ok(()),
        }
    }
}
