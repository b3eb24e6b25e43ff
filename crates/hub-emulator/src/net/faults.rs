//! Deterministic fault injection: rules (see `--help`, FAULT SPECS) select requests by route
//! class, path and method, pick the Nth or a seeded-random share of them, and make them fail
//! (status), stall, or lose their connection mid-body.

use std::fmt;
use std::time::Duration;

use parking_lot::Mutex;

use super::Class;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteSel {
    Content,
    Resolve,
    Cdn,
    Api,
    Commit,
    Upload,
    Cas,
    Xorb,
    Any,
}

impl RouteSel {
    fn matches(self, c: &Class) -> bool {
        match self {
            RouteSel::Content => c.content,
            RouteSel::Resolve => c.resolve,
            RouteSel::Cdn => c.cdn,
            RouteSel::Api => c.api,
            RouteSel::Commit => c.commit,
            RouteSel::Upload => c.upload,
            RouteSel::Cas => c.cas,
            RouteSel::Xorb => c.xorb,
            RouteSel::Any => true,
        }
    }
}

/// One parsed `--fault` rule.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultSpec {
    pub raw: String,
    pub route: RouteSel,
    pub path: Option<String>,
    pub method: Option<String>,
    pub every: Option<u64>,
    pub prob: Option<f64>,
    pub after: u64,
    pub times: Option<u64>,
    pub status: Option<u16>,
    pub retry_after: Option<u64>,
    pub cut_after: Option<u64>,
    pub stall: Option<Duration>,
    /// Invert one byte in the middle of the response body.
    pub corrupt: bool,
    /// Invert the body's byte at this offset instead (e.g. 5 on a xorb range: the first
    /// chunk header's uncompressed length, a chunk that decompresses to the wrong size).
    pub corrupt_at: Option<u64>,
    /// Serve the request as if its path said `to` where it says `from` (a server that answers
    /// about another object, e.g. the reconstruction of another file).
    pub rewrite: Option<(String, String)>,
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl FaultSpec {
    pub fn parse(spec: &str) -> Result<FaultSpec, String> {
        let mut f = FaultSpec {
            raw: spec.trim().to_string(),
            route: RouteSel::Any,
            path: None,
            method: None,
            every: None,
            prob: None,
            after: 0,
            times: None,
            status: None,
            retry_after: None,
            cut_after: None,
            stall: None,
            corrupt: false,
            corrupt_at: None,
            rewrite: None,
        };
        let num = |k: &str, v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("{k}={v:?}: expected a whole number"))
        };
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| format!("{pair:?}: expected key=value"))?;
            match k {
                "route" => {
                    f.route = match v {
                        "content" => RouteSel::Content,
                        "resolve" => RouteSel::Resolve,
                        "cdn" => RouteSel::Cdn,
                        "api" => RouteSel::Api,
                        "commit" => RouteSel::Commit,
                        "upload" => RouteSel::Upload,
                        "cas" => RouteSel::Cas,
                        "xorb" => RouteSel::Xorb,
                        "any" => RouteSel::Any,
                        _ => return Err(format!("unknown route {v:?}")),
                    }
                }
                "path" => f.path = Some(v.to_string()),
                "method" => f.method = Some(v.to_ascii_uppercase()),
                "every" => f.every = Some(num(k, v)?.max(1)),
                "prob" => {
                    let p: f64 = v
                        .parse()
                        .map_err(|_| format!("prob={v:?}: expected 0..1"))?;
                    if !(0.0..=1.0).contains(&p) {
                        return Err(format!("prob={v:?}: expected 0..1"));
                    }
                    f.prob = Some(p);
                }
                "after" => f.after = num(k, v)?,
                "times" => f.times = Some(num(k, v)?),
                "status" => {
                    let s = num(k, v)?;
                    if !(100..=599).contains(&s) {
                        return Err(format!("status={v}: not an HTTP status"));
                    }
                    f.status = Some(s as u16);
                }
                "retry-after" => f.retry_after = Some(num(k, v)?),
                "cut-after" => f.cut_after = Some(hub_wire::units::parse_size(v)?),
                "stall" => {
                    let s: f64 = v
                        .parse()
                        .map_err(|_| format!("stall={v:?}: expected seconds"))?;
                    if !s.is_finite() || s < 0.0 {
                        return Err(format!("stall={v:?}: expected seconds"));
                    }
                    f.stall = Some(Duration::from_secs_f64(s));
                }
                "corrupt" => f.corrupt = num(k, v)? != 0,
                "corrupt-at" => f.corrupt_at = Some(num(k, v)?),
                "rewrite" => {
                    let (from, to) = v
                        .split_once(':')
                        .filter(|(from, _)| !from.is_empty())
                        .ok_or_else(|| format!("rewrite={v:?}: expected FROM:TO"))?;
                    f.rewrite = Some((from.to_string(), to.to_string()));
                }
                _ => return Err(format!("unknown fault key {k:?}")),
            }
        }
        if f.status.is_none()
            && f.cut_after.is_none()
            && f.stall.is_none()
            && !f.corrupt
            && f.corrupt_at.is_none()
            && f.rewrite.is_none()
        {
            return Err(format!(
                "{spec:?}: needs an action (status=, cut-after=, stall=, corrupt=1, corrupt-at= or rewrite=)"
            ));
        }
        Ok(f)
    }
}

/// What to do to one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Injection {
    pub status: Option<u16>,
    pub retry_after: Option<u64>,
    pub cut_after: Option<u64>,
    pub stall: Option<Duration>,
    pub corrupt: bool,
    pub corrupt_at: Option<u64>,
    pub rewrite: Option<(String, String)>,
}

struct Rule {
    spec: FaultSpec,
    seen: u64,
    injected: u64,
    rng: fastrand::Rng,
}

pub struct Faults {
    seed: u64,
    rules: Mutex<Vec<Rule>>,
}

impl Faults {
    pub fn new(specs: Vec<FaultSpec>, seed: u64) -> Faults {
        let f = Faults {
            seed,
            rules: Mutex::new(Vec::new()),
        };
        f.replace(specs);
        f
    }

    /// Replaces all rules; counters and random streams restart.
    pub fn replace(&self, specs: Vec<FaultSpec>) {
        let rules = specs
            .into_iter()
            .enumerate()
            .map(|(i, spec)| Rule {
                spec,
                seen: 0,
                injected: 0,
                rng: fastrand::Rng::with_seed(self.seed.wrapping_add(i as u64)),
            })
            .collect();
        *self.rules.lock() = rules;
    }

    pub fn describe(&self) -> Vec<serde_json::Value> {
        self.rules
            .lock()
            .iter()
            .map(
                |r| serde_json::json!({"spec": r.spec.raw, "seen": r.seen, "injected": r.injected}),
            )
            .collect()
    }

    /// Decides the faults for one request; every matching rule counts it.
    pub fn decide(&self, class: &Class, method: &str, path: &str) -> Option<Injection> {
        let mut rules = self.rules.lock();
        let mut out: Option<Injection> = None;
        for r in rules.iter_mut() {
            let s = &r.spec;
            if !s.route.matches(class)
                || s.method.as_deref().is_some_and(|m| m != method)
                || s.path.as_deref().is_some_and(|p| !path.contains(p))
            {
                continue;
            }
            r.seen += 1;
            if r.seen <= s.after || s.times.is_some_and(|t| r.injected >= t) {
                continue;
            }
            let nth = r.seen - s.after;
            if s.every.is_some_and(|n| nth % n != 0) {
                continue;
            }
            if let Some(p) = s.prob {
                if r.rng.f64() >= p {
                    continue;
                }
            }
            r.injected += 1;
            let inj = out.get_or_insert_with(Injection::default);
            inj.status = inj.status.or(s.status);
            inj.retry_after = inj.retry_after.or(s.retry_after);
            inj.cut_after = inj.cut_after.or(s.cut_after);
            inj.stall = inj.stall.or(s.stall);
            inj.corrupt |= s.corrupt;
            inj.corrupt_at = inj.corrupt_at.or(s.corrupt_at);
            if inj.rewrite.is_none() {
                inj.rewrite.clone_from(&s.rewrite);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content() -> Class {
        Class {
            content: true,
            resolve: true,
            ..Class::default()
        }
    }

    #[test]
    fn parses_the_documented_examples() {
        let f = FaultSpec::parse("route=content,every=4,status=429,retry-after=1").unwrap();
        assert_eq!(f.route, RouteSel::Content);
        assert_eq!(
            (f.every, f.status, f.retry_after),
            (Some(4), Some(429), Some(1))
        );
        let f = FaultSpec::parse("route=cdn,every=3,cut-after=100000").unwrap();
        assert_eq!(f.cut_after, Some(100_000));
        let f = FaultSpec::parse("route=resolve,every=7,stall=30").unwrap();
        assert_eq!(f.stall, Some(Duration::from_secs(30)));
        assert!(FaultSpec::parse("route=content,every=2").is_err());
        assert!(FaultSpec::parse("route=nope,status=500").is_err());
        assert!(FaultSpec::parse("status=9999").is_err());
        let f = FaultSpec::parse("route=xorb,corrupt-at=5").unwrap();
        assert_eq!(
            (f.route, f.corrupt_at, f.corrupt),
            (RouteSel::Xorb, Some(5), false)
        );
        assert!(FaultSpec::parse("route=xorb,corrupt-at=-1").is_err());
        let f = FaultSpec::parse("route=cas,rewrite=aaa:bbb").unwrap();
        assert_eq!(f.rewrite, Some(("aaa".into(), "bbb".into())));
        let faults = Faults::new(vec![f], 0);
        let cas = Class {
            cas: true,
            ..Class::default()
        };
        let inj = faults
            .decide(&cas, "GET", "/cas/v2/reconstructions/aaa")
            .unwrap();
        assert_eq!(inj.rewrite, Some(("aaa".into(), "bbb".into())));
        assert!(FaultSpec::parse("rewrite=nocolon").is_err());
        assert!(FaultSpec::parse("rewrite=:b").is_err());
    }

    #[test]
    fn every_after_and_times_are_deterministic() {
        let f = Faults::new(
            vec![FaultSpec::parse("route=content,every=2,after=1,times=2,status=503").unwrap()],
            0,
        );
        let hits: Vec<bool> = (0..10)
            .map(|_| f.decide(&content(), "GET", "/x").is_some())
            .collect();
        // Request 1 skipped (after=1); then every 2nd of the rest (3rd, 5th), at most twice.
        assert_eq!(
            hits,
            [false, false, true, false, true, false, false, false, false, false]
        );
        assert!(f.decide(&Class::default(), "GET", "/x").is_none());
    }

    #[test]
    fn prob_is_seeded() {
        let run = |seed| {
            let f = Faults::new(vec![FaultSpec::parse("prob=0.5,status=500").unwrap()], seed);
            (0..64)
                .map(|_| f.decide(&content(), "GET", "/").is_some())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        let n = run(7).iter().filter(|x| **x).count();
        assert!((16..=48).contains(&n), "{n}");
    }
}
