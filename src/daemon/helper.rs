//! `mount -t fuse.hubfs` and `/etc/fstab`: turning a mount helper's command line into
//! `hubfs mount`'s.
//!
//! mount(8) runs `/sbin/mount.fuse.hubfs SOURCE DIR [-sfnv] [-o OPTS] [-t TYPE]` when that file
//! exists (a symlink to `hubfs`), else `/sbin/mount.fuse` (package fuse3), which runs
//! `hubfs SOURCE DIR -o OPTS` through the shell. Both end here: each `-o` option is either one of
//! `hubfs mount`'s long options (`cache_dir=/x` is `--cache-dir /x`, `allow_other` is
//! `--allow-other`), a few mount(8) words with a hubfs meaning (`ro`, `nonempty`), or one of the
//! generic options mount(8), systemd or the kernel own (`_netdev`, `noauto`, `user`, `x-*`,
//! `nodev`...), which are ignored as other FUSE filesystems do. Anything else is refused by
//! name rather than silently dropped.

/// Generic options that mean nothing to hubfs: fstab/mount(8)/systemd bookkeeping, and kernel
/// flags hubfs sets itself (always `nodev,nosuid`; no file is executable or has atimes).
const IGNORED: &[&str] = &[
    "defaults",
    "auto",
    "noauto",
    "user",
    "nouser",
    "users",
    "owner",
    "group",
    "_netdev",
    "nofail",
    "rw",
    "exec",
    "noexec",
    "suid",
    "nosuid",
    "dev",
    "nodev",
    "atime",
    "noatime",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
    "diratime",
    "nodiratime",
    "lazytime",
    "nolazytime",
    "sync",
    "async",
    "dirsync",
    "silent",
    "loud",
    "iversion",
    "noiversion",
    "mand",
    "nomand",
];

/// Ignored option prefixes (`x-systemd.automount`, `x-systemd.requires=...`, `comment=...`).
const IGNORED_PREFIXES: &[&str] = &["x-", "comment="];

/// mount(8) words that map to a differently named `hubfs mount` option.
const RENAMED: &[(&str, &str)] = &[("ro", "read-only"), ("nonempty", "allow-non-empty")];

/// What the helper was asked to do.
#[derive(Debug, PartialEq, Eq)]
pub enum HelperCall {
    /// Run `hubfs` with these arguments (`mount SOURCE DIR --option...`).
    Mount(Vec<String>),
    /// `mount -f`: pretend (mount(8)'s fake mode): do nothing and succeed.
    Fake,
}

/// True when `argv0` names the mount helper (`mount.hubfs`, `mount.fuse.hubfs`, any path).
pub fn is_helper_name(argv0: &str) -> bool {
    let base = argv0.rsplit('/').next().unwrap_or(argv0);
    base.starts_with("mount.")
}

/// Translates a helper command line (without argv[0]) into `hubfs` arguments.
/// `option_kind(name)` tells whether `hubfs mount --NAME` exists: None if not, Some(true) if
/// it takes a value, Some(false) for a flag.
pub fn translate(
    args: &[String],
    option_kind: impl Fn(&str) -> Option<bool>,
) -> Result<HelperCall, String> {
    let mut positional = Vec::new();
    let mut options = Vec::new();
    let mut fake = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-o" => options.push(
                it.next()
                    .ok_or("-o needs a list of options (-o ro,cache_dir=DIR)")?
                    .clone(),
            ),
            // `-t fuse.hubfs`: the type we already are.
            "-t" => {
                it.next();
            }
            "-N" | "--namespace" => {
                return Err("mount -N (another mount namespace) is not supported".into())
            }
            s if s.starts_with("-o") && s.len() > 2 => options.push(s[2..].to_string()),
            s if s.starts_with('-') && s.len() > 1 && !s.starts_with("--") => {
                // -s sloppy, -n no mtab, -v verbose: nothing to do; -f fake: do nothing.
                for c in s[1..].chars() {
                    match c {
                        'f' => fake = true,
                        's' | 'n' | 'v' | 'r' | 'w' => {}
                        _ => return Err(format!("unknown mount helper flag -{c}")),
                    }
                }
            }
            _ => positional.push(arg.clone()),
        }
    }
    let [source, dir] = positional.as_slice() else {
        return Err(format!(
            "usage: mount.fuse.hubfs SOURCE MOUNTPOINT [-o OPTIONS] (got {} operands)",
            positional.len()
        ));
    };
    // As with mount(8), a later option overrides an earlier one of the same name (`ro,rw` is
    // writable; `cache_dir=/a,cache_dir=/b` is /b); each reaches `hubfs mount` once.
    let mut chosen: Vec<String> = Vec::new();
    for opt in options.iter().flat_map(|o| o.split(',')) {
        if opt.trim() == "rw" {
            chosen.retain(|a| a != "--read-only");
            continue;
        }
        if let Some(arg) = translate_option(opt, &option_kind)? {
            let name = arg.split('=').next().unwrap_or(&arg).to_string();
            chosen.retain(|a| a.split('=').next() != Some(name.as_str()));
            chosen.push(arg);
        }
    }
    if fake {
        return Ok(HelperCall::Fake);
    }
    let mut out = vec!["mount".to_string(), source.clone(), dir.clone()];
    out.extend(chosen);
    Ok(HelperCall::Mount(out))
}

/// One `-o` option as a `hubfs mount` argument (`--name=value`), None if ignored.
fn translate_option(
    opt: &str,
    option_kind: &impl Fn(&str) -> Option<bool>,
) -> Result<Option<String>, String> {
    let opt = opt.trim();
    if opt.is_empty()
        || IGNORED.contains(&opt)
        || IGNORED_PREFIXES.iter().any(|p| opt.starts_with(p))
    {
        return Ok(None);
    }
    let (name, value) = match opt.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (opt, None),
    };
    let long = RENAMED
        .iter()
        .find(|(from, _)| *from == name)
        .map(|(_, to)| to.to_string())
        .unwrap_or_else(|| name.replace('_', "-"));
    // Options that make no sense for a helper that must return once the mount is live.
    if long == "foreground" || long == "help" || long == "version" {
        return Err(format!("mount option {name} is not available in fstab"));
    }
    match (option_kind(&long), value) {
        (None, _) => Err(format!(
            "unknown mount option {name:?} (the options are those of `hubfs mount --help`, \
             written cache_dir=DIR or cache-dir=DIR)"
        )),
        (Some(true), None) => Err(format!("mount option {name} needs a value ({name}=...)")),
        (Some(false), Some(_)) => Err(format!("mount option {name} takes no value")),
        (Some(true), Some(v)) => Ok(Some(format!("--{long}={v}"))),
        (Some(false), None) => Ok(Some(format!("--{long}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(name: &str) -> Option<bool> {
        match name {
            "cache-dir" | "endpoint" | "uid" => Some(true),
            "read-only" | "allow-other" | "allow-non-empty" | "foreground" => Some(false),
            _ => None,
        }
    }

    fn args(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn fstab_options_become_long_options() {
        let call = translate(
            &args("alice/m /mnt/m -o rw,ro,_netdev,x-systemd.automount,noauto,user,nodev,cache_dir=/c,allow_other,endpoint=http://127.0.0.1:1/,nonempty"),
            kind,
        )
        .unwrap();
        assert_eq!(
            call,
            HelperCall::Mount(args(
                "mount alice/m /mnt/m --read-only --cache-dir=/c --allow-other --endpoint=http://127.0.0.1:1/ --allow-non-empty"
            ))
        );
    }

    #[test]
    fn flags_from_mount_and_several_o() {
        let call = translate(
            &args("-n alice/m -s /mnt/m -o ro -t fuse.hubfs -ouid=7"),
            kind,
        )
        .unwrap();
        assert_eq!(
            call,
            HelperCall::Mount(args("mount alice/m /mnt/m --read-only --uid=7"))
        );
        assert_eq!(
            translate(&args("alice/m /mnt/m -f -o ro"), kind).unwrap(),
            HelperCall::Fake
        );
    }

    #[test]
    fn later_options_win_and_none_is_repeated() {
        let call = translate(
            &args("a/b /m -o ro,read_only,cache_dir=/a,cache_dir=/b -o ro,rw"),
            kind,
        )
        .unwrap();
        assert_eq!(call, HelperCall::Mount(args("mount a/b /m --cache-dir=/b")));
        let call = translate(&args("a/b /m -o rw,ro"), kind).unwrap();
        assert_eq!(call, HelperCall::Mount(args("mount a/b /m --read-only")));
    }

    #[test]
    fn bad_options_are_named() {
        let e = translate(&args("a/b /m -o cachedir=/x"), kind).unwrap_err();
        assert!(e.contains("\"cachedir\""), "{e}");
        let e = translate(&args("a/b /m -o cache_dir"), kind).unwrap_err();
        assert!(e.contains("needs a value"), "{e}");
        let e = translate(&args("a/b /m -o allow_other=1"), kind).unwrap_err();
        assert!(e.contains("takes no value"), "{e}");
        let e = translate(&args("a/b /m -o foreground"), kind).unwrap_err();
        assert!(e.contains("not available"), "{e}");
        let e = translate(&args("a/b -o ro"), kind).unwrap_err();
        assert!(e.contains("usage"), "{e}");
    }

    #[test]
    fn helper_names() {
        assert!(is_helper_name("/sbin/mount.fuse.hubfs"));
        assert!(is_helper_name("mount.hubfs"));
        assert!(!is_helper_name("/usr/bin/hubfs"));
    }
}
