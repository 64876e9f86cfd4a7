//! The command lines of the gofer and sandbox roles: built by the launcher,
//! parsed by the role. Fds are passed by number (see `sys::spawn`: the
//! launcher's fd list lands at 3, 4, ... in order).
//!
//! ```text
//! sandboxd-gofer   --container NAME --err-fd 3 --sock-fd 4 --root /store/<sha>/rootfs
//!                  [--bind bind0:ro:/host/dir --bind bind1:rw:/other ...]
//! sandboxd-sandbox --err-fd 3 --spec-fd 4 --gofer-fds 5,6,... [--control-fd 7]
//! ```
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::os::fd::RawFd;
use std::path::PathBuf;

use crate::sys::spawn::FIRST_FD;

use super::spec::GoferBind;

use super::{GOFER_ROLE, SANDBOX_ROLE};

/// Arguments of the gofer role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoferArgs {
    /// Container name, for messages.
    pub container: String,
    pub err_fd: RawFd,
    pub sock_fd: RawFd,
    /// Host directory to export (read-only).
    pub root: PathBuf,
    /// Bind mounts to serve beside it, in order.
    pub binds: Vec<GoferBind>,
}

/// Arguments of the sandbox role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxArgs {
    pub err_fd: RawFd,
    pub spec_fd: RawFd,
    /// Gofer sockets, in the order of the spec's containers.
    pub gofer_fds: Vec<RawFd>,
    /// The listening control socket, when the pod is tracked in the
    /// state root (the containers then wait for its `start` request).
    pub control_fd: Option<RawFd>,
}

impl GoferArgs {
    /// The args for a gofer whose fd list is `[err, sock]`.
    pub fn new(container: &str, root: PathBuf, binds: Vec<GoferBind>) -> GoferArgs {
        GoferArgs {
            container: container.into(),
            err_fd: FIRST_FD,
            sock_fd: FIRST_FD + 1,
            root,
            binds,
        }
    }

    pub fn to_argv(&self) -> Vec<String> {
        let mut argv = vec![
            GOFER_ROLE.into(),
            "--container".into(),
            self.container.clone(),
            "--err-fd".into(),
            self.err_fd.to_string(),
            "--sock-fd".into(),
            self.sock_fd.to_string(),
            "--root".into(),
            self.root.to_string_lossy().into_owned(),
        ];
        for b in &self.binds {
            let mode = if b.readonly { "ro" } else { "rw" };
            argv.push("--bind".into());
            argv.push(format!("{}:{mode}:{}", b.aname, b.source.display()));
        }
        argv
    }

    pub fn parse(argv: &[String]) -> Result<GoferArgs, String> {
        let (argv, binds) = take_repeated(argv, "--bind")?;
        let mut opts = options(&argv, &["--container", "--err-fd", "--sock-fd", "--root"])?;
        Ok(GoferArgs {
            container: take(&mut opts, "--container")?,
            err_fd: parse_fd(&take(&mut opts, "--err-fd")?)?,
            sock_fd: parse_fd(&take(&mut opts, "--sock-fd")?)?,
            root: PathBuf::from(take(&mut opts, "--root")?),
            binds: binds
                .iter()
                .map(|b| parse_bind(b))
                .collect::<Result<_, _>>()?,
        })
    }
}

/// Splits the values of every `name VALUE` pair out of `argv`.
fn take_repeated(argv: &[String], name: &str) -> Result<(Vec<String>, Vec<String>), String> {
    let (mut rest, mut values) = (Vec::new(), Vec::new());
    let mut it = argv.iter();
    while let Some(a) = it.next() {
        if a == name {
            values.push(
                it.next()
                    .ok_or_else(|| format!("{name} needs a value"))?
                    .clone(),
            );
        } else {
            rest.push(a.clone());
        }
    }
    Ok((rest, values))
}

/// "bind0:ro:/host/dir" (the path may contain ':').
fn parse_bind(s: &str) -> Result<GoferBind, String> {
    let bad = || format!("bad --bind {s:?} (expected NAME:ro|rw:/PATH)");
    let mut parts = s.splitn(3, ':');
    let (aname, mode, path) = match (parts.next(), parts.next(), parts.next()) {
        (Some(a), Some(m), Some(p)) => (a, m, p),
        _ => return Err(bad()),
    };
    let name_ok = !aname.is_empty() && aname.bytes().all(|b| b.is_ascii_alphanumeric());
    if !name_ok || !path.starts_with('/') {
        return Err(bad());
    }
    let readonly = match mode {
        "ro" => true,
        "rw" => false,
        _ => return Err(bad()),
    };
    Ok(GoferBind {
        aname: aname.into(),
        source: PathBuf::from(path),
        readonly,
    })
}

impl SandboxArgs {
    /// The args for a sandbox whose fd list is `[err, spec, gofers...]`,
    /// then the control socket if `control`.
    pub fn new(gofers: usize, control: bool) -> SandboxArgs {
        let gofer_fds = (0..gofers as RawFd).map(|i| FIRST_FD + 2 + i).collect();
        SandboxArgs {
            err_fd: FIRST_FD,
            spec_fd: FIRST_FD + 1,
            gofer_fds,
            control_fd: control.then_some(FIRST_FD + 2 + gofers as RawFd),
        }
    }

    pub fn to_argv(&self) -> Vec<String> {
        let fds: Vec<String> = self.gofer_fds.iter().map(|fd| fd.to_string()).collect();
        let mut argv = vec![
            SANDBOX_ROLE.into(),
            "--err-fd".into(),
            self.err_fd.to_string(),
            "--spec-fd".into(),
            self.spec_fd.to_string(),
            "--gofer-fds".into(),
            fds.join(","),
        ];
        if let Some(fd) = self.control_fd {
            argv.extend(["--control-fd".into(), fd.to_string()]);
        }
        argv
    }

    pub fn parse(argv: &[String]) -> Result<SandboxArgs, String> {
        let known = ["--err-fd", "--spec-fd", "--gofer-fds", "--control-fd"];
        let mut opts = options(argv, &known)?;
        Ok(SandboxArgs {
            err_fd: parse_fd(&take(&mut opts, "--err-fd")?)?,
            spec_fd: parse_fd(&take(&mut opts, "--spec-fd")?)?,
            gofer_fds: parse_fd_list(&take(&mut opts, "--gofer-fds")?)?,
            control_fd: opts
                .remove("--control-fd")
                .map(|s| parse_fd(&s))
                .transpose()?,
        })
    }
}

/// Splits `argv[1..]` into `--name value` pairs, refusing unknown names,
/// repeats and a missing value.
fn options(argv: &[String], known: &[&str]) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let mut it = argv.iter().skip(1);
    while let Some(name) = it.next() {
        if !known.contains(&name.as_str()) {
            return Err(format!("unknown argument {name:?}"));
        }
        let value = it.next().ok_or_else(|| format!("{name} needs a value"))?;
        if out.insert(name.clone(), value.clone()).is_some() {
            return Err(format!("{name} given twice"));
        }
    }
    Ok(out)
}

fn take(opts: &mut BTreeMap<String, String>, name: &str) -> Result<String, String> {
    opts.remove(name).ok_or_else(|| format!("missing {name}"))
}

/// Parses one fd number; stdio (0-2) is not a valid handed-over fd.
pub fn parse_fd(s: &str) -> Result<RawFd, String> {
    match s.parse::<RawFd>() {
        Ok(fd) if fd >= FIRST_FD => Ok(fd),
        _ => Err(format!("bad fd number {s:?}")),
    }
}

/// Parses "3,4,5" (empty string: no fds).
pub fn parse_fd_list(s: &str) -> Result<Vec<RawFd>, String> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    s.split(',').map(parse_fd).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_fd_list_commas_returns_numbers() {
        assert_eq!(parse_fd_list("5,6,7").unwrap(), vec![5, 6, 7]);
        assert_eq!(parse_fd_list("").unwrap(), Vec::<RawFd>::new());
    }

    #[test]
    fn parse_fd_list_stdio_or_garbage_fails() {
        assert!(parse_fd_list("5,2").is_err());
        assert!(parse_fd_list("5,,6").is_err());
        assert!(parse_fd_list("x").is_err());
    }

    #[test]
    fn gofer_args_binds_round_trip_through_argv() {
        let binds = vec![
            GoferBind {
                aname: "bind0".into(),
                source: PathBuf::from("/h/a:b"),
                readonly: true,
            },
            GoferBind {
                aname: "bind1".into(),
                source: PathBuf::from("/h/c"),
                readonly: false,
            },
        ];
        let args = GoferArgs::new("app", PathBuf::from("/r"), binds);
        let argv = args.to_argv();
        assert_eq!(
            argv[9..].join(" "),
            "--bind bind0:ro:/h/a:b --bind bind1:rw:/h/c"
        );
        assert_eq!(GoferArgs::parse(&argv).unwrap(), args);
    }

    #[test]
    fn gofer_args_bad_bind_fails() {
        for bad in [
            "bind0:rx:/a",
            "bind0:ro:rel",
            ":ro:/a",
            "b/0:ro:/a",
            "bind0",
        ] {
            let mut argv = GoferArgs::new("app", PathBuf::from("/r"), vec![]).to_argv();
            argv.extend(["--bind".to_string(), bad.to_string()]);
            assert!(GoferArgs::parse(&argv).is_err(), "{bad}");
        }
    }

    #[test]
    fn gofer_args_round_trip_through_argv() {
        let args = GoferArgs::new("app", PathBuf::from("/store/ab/rootfs"), vec![]);
        let argv = args.to_argv();
        assert_eq!(argv[0], "sandboxd-gofer");
        assert_eq!(
            argv.join(" "),
            "sandboxd-gofer --container app --err-fd 3 --sock-fd 4 --root /store/ab/rootfs"
        );
        assert_eq!(GoferArgs::parse(&argv).unwrap(), args);
    }

    #[test]
    fn sandbox_args_two_gofers_follow_err_and_spec() {
        let args = SandboxArgs::new(2, false);
        assert_eq!(
            args.to_argv().join(" "),
            "sandboxd-sandbox --err-fd 3 --spec-fd 4 --gofer-fds 5,6"
        );
        assert_eq!(SandboxArgs::parse(&args.to_argv()).unwrap(), args);
    }

    #[test]
    fn sandbox_args_control_fd_follows_the_gofers() {
        let args = SandboxArgs::new(1, true);
        assert_eq!(
            args.to_argv().join(" "),
            "sandboxd-sandbox --err-fd 3 --spec-fd 4 --gofer-fds 5 --control-fd 6"
        );
        assert_eq!(SandboxArgs::parse(&args.to_argv()).unwrap(), args);
    }

    #[test]
    fn parse_unknown_or_missing_option_fails() {
        let argv: Vec<String> = ["x", "--err-fd", "3", "--bogus", "1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(SandboxArgs::parse(&argv).unwrap_err().contains("--bogus"));
        let argv: Vec<String> = ["x", "--err-fd", "3"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(SandboxArgs::parse(&argv).unwrap_err(), "missing --spec-fd");
    }
}
