//! The schema of a container's `mounts`: an array of mount objects, each a
//! bind mount of a host directory or a tmpfs.
//!
//! ```json
//! "mounts": [
//!   { "source": "./data", "target": "/data", "readonly": true },
//!   { "type": "tmpfs", "target": "/scratch", "size": "64MiB" }
//! ]
//! ```
//!
//! * `type`: "bind" (default) or "tmpfs".
//! * `volume`: the name of one of the pod's `volumes` instead of a type
//!   and source: the containers mounting it share it (`readonly` applies
//!   to this container only).
//! * `source` (bind, required): a host directory, relative to the pod
//!   file's directory or absolute; it must exist, and is made canonical.
//! * `target` (required): where the mount appears in the container: an
//!   absolute, normalised path (no `.`, `..`, `//` or trailing `/`), not
//!   `/`, and no two mounts of a container share one. Mounts are made in
//!   array order, so a target may lie inside an earlier mount.
//! * `readonly` (bind only, default false): the gofer refuses every change
//!   under the mount (EROFS).
//! * `size` (tmpfs only, default "64MiB"): at most this many bytes; a
//!   number of bytes, or a string of digits with an optional unit B, KiB,
//!   MiB or GiB.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::json::{self, Field, Invalid, JsonPath};
use super::schema::Ctx;
use super::Mount;

/// The size of a tmpfs without `size`.
pub const DEFAULT_TMPFS_SIZE: u64 = 64 << 20;

/// Reads the `mounts` array at `at`.
pub fn read_mounts(ctx: &Ctx, v: &Value, at: &JsonPath) -> Result<Vec<Mount>, Invalid> {
    let items = v
        .as_array()
        .ok_or_else(|| Invalid::new(at, format!("expected an array, got {}", json::kind(v))))?;
    let mut mounts: Vec<Mount> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let item_at = at.index(i);
        let mut b = MountBuilder::default();
        json::read_object(ctx, &mut b, MOUNT_FIELDS, item, &item_at)?;
        let mount = b.finish(ctx, &item_at)?;
        if let Some(j) = mounts.iter().position(|m| m.target() == mount.target()) {
            return Err(Invalid::new(
                &item_at.key("target"),
                format!("{:?} is already the target of mounts[{j}]", mount.target()),
            ));
        }
        mounts.push(mount);
    }
    Ok(mounts)
}

#[derive(Default)]
struct MountBuilder {
    kind: Option<String>,
    volume: Option<String>,
    source: Option<String>,
    target: Option<String>,
    readonly: Option<bool>,
    size: Option<u64>,
}

type ReadResult = Result<(), Invalid>;

const MOUNT_FIELDS: &[Field<Ctx, MountBuilder>] = &[
    Field {
        name: "type",
        read: read_type,
    },
    Field {
        name: "volume",
        read: read_volume,
    },
    Field {
        name: "source",
        read: read_source,
    },
    Field {
        name: "target",
        read: read_target,
    },
    Field {
        name: "readonly",
        read: read_readonly,
    },
    Field {
        name: "size",
        read: read_size,
    },
];

fn read_type(_: &Ctx, b: &mut MountBuilder, v: &Value, at: &JsonPath) -> ReadResult {
    let t = json::string(v, at)?;
    if t != "bind" && t != "tmpfs" {
        return Err(Invalid::new(
            at,
            format!("expected \"bind\" or \"tmpfs\", got {t:?}"),
        ));
    }
    b.kind = Some(t.to_owned());
    Ok(())
}

fn read_volume(_: &Ctx, b: &mut MountBuilder, v: &Value, at: &JsonPath) -> ReadResult {
    b.volume = Some(json::string(v, at)?.to_owned());
    Ok(())
}

fn read_source(_: &Ctx, b: &mut MountBuilder, v: &Value, at: &JsonPath) -> ReadResult {
    let s = json::string(v, at)?;
    if s.is_empty() {
        return Err(Invalid::new(at, "must not be empty"));
    }
    b.source = Some(s.to_owned());
    Ok(())
}

fn read_target(_: &Ctx, b: &mut MountBuilder, v: &Value, at: &JsonPath) -> ReadResult {
    let t = json::string(v, at)?;
    if !is_normal_absolute(t) {
        return Err(Invalid::new(
            at,
            format!(
                "expected an absolute path without '.', '..', '//' or a trailing '/', got {t:?}"
            ),
        ));
    }
    if t == "/" {
        return Err(Invalid::new(at, "cannot mount over \"/\""));
    }
    b.target = Some(t.to_owned());
    Ok(())
}

fn read_readonly(_: &Ctx, b: &mut MountBuilder, v: &Value, at: &JsonPath) -> ReadResult {
    let ro = v
        .as_bool()
        .ok_or_else(|| Invalid::new(at, "expected true or false"))?;
    b.readonly = Some(ro);
    Ok(())
}

fn read_size(_: &Ctx, b: &mut MountBuilder, v: &Value, at: &JsonPath) -> ReadResult {
    let size = size_value(v, at)?;
    if size == 0 {
        return Err(Invalid::new(at, "must be at least one byte"));
    }
    b.size = Some(size);
    Ok(())
}

/// A size: a number of bytes, or a string with a unit ("64MiB").
pub fn size_value(v: &Value, at: &JsonPath) -> Result<u64, Invalid> {
    let size = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => parse_size(s),
        _ => None,
    };
    let size = size.ok_or_else(|| {
        Invalid::new(
            at,
            format!(
                "expected a size such as \"64MiB\" (a whole number of B, KiB, MiB or GiB) or a number of bytes, got {v}"
            ),
        )
    })?;
    Ok(size)
}

/// "4096", "100B", "512KiB", "64MiB", "2GiB": bytes, or None.
pub fn parse_size(s: &str) -> Option<u64> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (n, unit) = s.split_at(digits);
    let shift = match unit {
        "" | "B" => 0,
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        _ => return None,
    };
    if n.is_empty() {
        return None;
    }
    let n: u64 = n.parse().ok()?;
    n.checked_mul(1 << shift)
}

/// `/a/b`: absolute, no empty, `.` or `..` component, no trailing `/`
/// (except `/` itself).
fn is_normal_absolute(p: &str) -> bool {
    let Some(rest) = p.strip_prefix('/') else {
        return false;
    };
    rest.is_empty()
        || rest
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

impl MountBuilder {
    fn finish(self, ctx: &Ctx, at: &JsonPath) -> Result<Mount, Invalid> {
        let Some(target) = self.target else {
            return Err(Invalid::new(&at.key("target"), "required field is missing"));
        };
        if let Some(name) = self.volume {
            // Checked against the pod's `volumes` once they are all read.
            for (set, field) in [
                (self.kind.is_some(), "type"),
                (self.source.is_some(), "source"),
                (self.size.is_some(), "size"),
            ] {
                if set {
                    return Err(not_for(at, field, "volume"));
                }
            }
            return Ok(Mount::Volume {
                name,
                target,
                readonly: self.readonly.unwrap_or(false),
            });
        }
        if self.kind.as_deref() == Some("tmpfs") {
            if self.source.is_some() {
                return Err(not_for(at, "source", "tmpfs"));
            }
            if self.readonly.is_some() {
                return Err(not_for(at, "readonly", "tmpfs"));
            }
            let size = self.size.unwrap_or(DEFAULT_TMPFS_SIZE);
            return Ok(Mount::Tmpfs { target, size });
        }
        if self.size.is_some() {
            return Err(not_for(at, "size", "bind"));
        }
        let source_at = at.key("source");
        let Some(source) = self.source else {
            return Err(Invalid::new(&source_at, "required field is missing"));
        };
        Ok(Mount::Bind {
            source: host_dir(&ctx.dir, &source, &source_at)?,
            target,
            readonly: self.readonly.unwrap_or(false),
        })
    }
}

fn not_for(at: &JsonPath, field: &str, kind: &str) -> Invalid {
    Invalid::new(&at.key(field), format!("not allowed in a {kind} mount"))
}

/// The canonical path of the existing directory `rel` (relative to `dir`,
/// or absolute); errors read "/x/data: No such file or directory".
pub fn host_dir(dir: &Path, rel: &str, at: &JsonPath) -> Result<PathBuf, Invalid> {
    // Lexically tidy ("./data" -> "data") for the message only.
    let path: PathBuf = dir.join(rel).components().collect();
    let fail = |errno: i32| {
        let why = nix::errno::Errno::from_raw(errno).desc();
        Invalid::new(at, format!("{}: {why}", path.display()))
    };
    let os = |e: std::io::Error| fail(e.raw_os_error().unwrap_or(libc::EIO));
    if !std::fs::metadata(&path).map_err(os)?.is_dir() {
        return Err(fail(libc::ENOTDIR));
    }
    std::fs::canonicalize(&path).map_err(os)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_size_units_and_plain_bytes() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("100B"), Some(100));
        assert_eq!(parse_size("512KiB"), Some(512 << 10));
        assert_eq!(parse_size("64MiB"), Some(64 << 20));
        assert_eq!(parse_size("2GiB"), Some(2 << 30));
    }

    #[test]
    fn parse_size_garbage_and_overflow_is_none() {
        for bad in [
            "",
            "MiB",
            "1.5GiB",
            "-1",
            "1 MiB",
            "1mib",
            "1MB",
            "1K",
            "99999999999999GiB",
        ] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn is_normal_absolute_refuses_dots_and_slashes() {
        assert!(is_normal_absolute("/data"));
        assert!(is_normal_absolute("/a/b.c/..d"));
        for bad in ["data", "/a/", "//a", "/a//b", "/a/./b", "/a/..", "/./a", ""] {
            assert!(!is_normal_absolute(bad), "{bad}");
        }
    }

    use crate::pod::{load, Pod, TestDir};

    /// Loads a pod whose container `web` has `mounts`, from a directory
    /// holding root.tar, the directory data/ and the file file.txt.
    fn load_mounts(mounts: &str) -> (TestDir, Result<Pod, String>) {
        let dir = TestDir::new();
        dir.file("root.tar", "");
        dir.file("file.txt", "");
        std::fs::create_dir(dir.0.join("data")).unwrap();
        let text = format!(
            r#"{{"containers": {{"web": {{"image": "root.tar", "command": ["/bin/true"],
                "mounts": {mounts}}}}}}}"#
        );
        let r = load(&dir.file("pod.json", &text)).map_err(|e| {
            let msg = e.to_string();
            msg[msg.find("pod.json: ").unwrap() + 10..].to_owned()
        });
        (dir, r)
    }

    fn err(mounts: &str) -> String {
        let (dir, r) = load_mounts(mounts);
        r.unwrap_err().replace(&dir.0.display().to_string(), "/d")
    }

    #[test]
    fn load_mounts_bind_and_tmpfs_in_order_with_defaults() {
        let (dir, pod) = load_mounts(
            r#"[{"source": "./data", "target": "/data", "readonly": true},
                {"type": "tmpfs", "target": "/scratch"},
                {"type": "bind", "source": "data", "target": "/data/again"},
                {"type": "tmpfs", "target": "/big", "size": "1GiB"},
                {"type": "tmpfs", "target": "/n", "size": 4096}]"#,
        );
        let data = dir.0.join("data");
        let got = &pod.unwrap().containers["web"].mounts;
        let want = [
            Mount::Bind {
                source: data.clone(),
                target: "/data".into(),
                readonly: true,
            },
            Mount::Tmpfs {
                target: "/scratch".into(),
                size: 64 << 20,
            },
            Mount::Bind {
                source: data,
                target: "/data/again".into(),
                readonly: false,
            },
            Mount::Tmpfs {
                target: "/big".into(),
                size: 1 << 30,
            },
            Mount::Tmpfs {
                target: "/n".into(),
                size: 4096,
            },
        ];
        assert_eq!(got, &want);
    }

    #[test]
    fn load_mounts_missing_source_names_path_and_errno() {
        assert_eq!(
            err(r#"[{"source": "./nope", "target": "/x"}]"#),
            "containers.web.mounts[0].source: /d/nope: No such file or directory"
        );
    }

    #[test]
    fn load_mounts_file_source_is_not_a_directory() {
        assert_eq!(
            err(r#"[{"source": "file.txt", "target": "/x"}]"#),
            "containers.web.mounts[0].source: /d/file.txt: Not a directory"
        );
    }

    #[test]
    fn load_mounts_bad_targets_are_refused() {
        let e = err(r#"[{"source": "data", "target": "data"}]"#);
        assert_eq!(
            e,
            r#"containers.web.mounts[0].target: expected an absolute path without '.', '..', '//' or a trailing '/', got "data""#
        );
        for t in ["/a/../b", "/a/", "//a", "/./a"] {
            let e = err(&format!(r#"[{{"type": "tmpfs", "target": "{t}"}}]"#));
            assert!(
                e.starts_with("containers.web.mounts[0].target: expected an absolute path"),
                "{t}: {e}"
            );
        }
        assert_eq!(
            err(r#"[{"type": "tmpfs", "target": "/"}]"#),
            r#"containers.web.mounts[0].target: cannot mount over "/""#
        );
        assert_eq!(
            err(r#"[{"type": "tmpfs"}]"#),
            "containers.web.mounts[0].target: required field is missing"
        );
    }

    #[test]
    fn load_mounts_duplicate_target_is_refused() {
        assert_eq!(
            err(r#"[{"type": "tmpfs", "target": "/x"}, {"source": "data", "target": "/x"}]"#),
            r#"containers.web.mounts[1].target: "/x" is already the target of mounts[0]"#
        );
    }

    #[test]
    fn load_mounts_bad_sizes_are_refused() {
        assert_eq!(
            err(r#"[{"type": "tmpfs", "target": "/x", "size": "12XB"}]"#),
            r#"containers.web.mounts[0].size: expected a size such as "64MiB" (a whole number of B, KiB, MiB or GiB) or a number of bytes, got "12XB""#
        );
        for size in ["-1", "1.5", "true", r#""""#] {
            let e = err(&format!(
                r#"[{{"type": "tmpfs", "target": "/x", "size": {size}}}]"#
            ));
            assert!(
                e.starts_with("containers.web.mounts[0].size: expected a size"),
                "{e}"
            );
        }
        assert_eq!(
            err(r#"[{"type": "tmpfs", "target": "/x", "size": "0MiB"}]"#),
            "containers.web.mounts[0].size: must be at least one byte"
        );
    }

    #[test]
    fn load_mounts_fields_of_the_other_kind_are_refused() {
        assert_eq!(
            err(r#"[{"source": "data", "target": "/x", "size": "1MiB"}]"#),
            "containers.web.mounts[0].size: not allowed in a bind mount"
        );
        assert_eq!(
            err(r#"[{"type": "tmpfs", "source": "data", "target": "/x"}]"#),
            "containers.web.mounts[0].source: not allowed in a tmpfs mount"
        );
        assert_eq!(
            err(r#"[{"type": "tmpfs", "target": "/x", "readonly": true}]"#),
            "containers.web.mounts[0].readonly: not allowed in a tmpfs mount"
        );
        assert_eq!(
            err(r#"[{"target": "/x"}]"#),
            "containers.web.mounts[0].source: required field is missing"
        );
    }

    #[test]
    fn load_mounts_wrong_shapes_are_refused() {
        assert_eq!(
            err(r#"{"a": 1}"#),
            "containers.web.mounts: expected an array, got an object"
        );
        assert_eq!(
            err(r#"["/data"]"#),
            "containers.web.mounts[0]: expected an object, got a string"
        );
        assert_eq!(
            err(r#"[{"type": "nfs", "target": "/x"}]"#),
            r#"containers.web.mounts[0].type: expected "bind" or "tmpfs", got "nfs""#
        );
        assert_eq!(
            err(r#"[{"type": "tmpfs", "target": "/x", "options": "ro"}]"#),
            "containers.web.mounts[0].options: unknown field (known fields: readonly, size, source, target, type, volume)"
        );
        assert_eq!(
            err(r#"[{"source": "data", "target": "/x", "readonly": "yes"}]"#),
            "containers.web.mounts[0].readonly: expected true or false"
        );
    }
}
