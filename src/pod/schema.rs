//! The pod file's schema: one field table per JSON object (pod, image,
//! container; the mount object is in `mounts.rs`), the rules each field
//! enforces, and the defaults.
//!
//! Reading happens in two steps. The field tables read every member into a
//! builder (so members may come in any order and unknown ones are refused
//! with their JSON path); then `finish` checks what is required and resolves
//! cross-references (a container's `image` against `images`). Supporting a
//! new member (`resources`, ...) is one table entry, one builder
//! field and, if it has a default, one line in `finish`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::json::{self, Field, Invalid, JsonPath};
use super::{Container, Image, Mount, Pod, Resources, User, Volume};

/// What every field reader may consult.
pub struct Ctx {
    /// Absolute directory of the pod file; relative paths start here.
    pub dir: PathBuf,
}

/// The platforms `platform` accepts.
pub const PLATFORMS: &[&str] = &["auto", "kvm", "ptrace"];

/// Checks a name of the pod or of a container: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphanumeric() => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Reads and checks a whole pod document. `default_name` is used when the
/// document has no `name`.
pub fn evaluate(v: &Value, ctx: &Ctx, default_name: String) -> Result<Pod, Invalid> {
    let mut b = PodBuilder::default();
    json::read_object(ctx, &mut b, POD_FIELDS, v, &JsonPath::root())?;
    b.finish(ctx, default_name)
}

// ---- pod ----

#[derive(Default)]
struct PodBuilder {
    name: Option<String>,
    platform: Option<String>,
    images: BTreeMap<String, Image>,
    containers: Option<BTreeMap<String, ContainerBuilder>>,
    resources: Resources,
    volumes: BTreeMap<String, Volume>,
    pid: Option<String>,
}

const POD_FIELDS: &[Field<Ctx, PodBuilder>] = &[
    Field {
        name: "name",
        read: read_pod_name,
    },
    Field {
        name: "platform",
        read: read_platform,
    },
    Field {
        name: "images",
        read: read_images,
    },
    Field {
        name: "containers",
        read: read_containers,
    },
    Field {
        name: "resources",
        read: read_resources,
    },
    Field {
        name: "volumes",
        read: read_volumes,
    },
    Field {
        name: "pid",
        read: read_pid,
    },
];

/// The values `pid` accepts: one PID namespace per container (default)
/// or one for the whole pod.
pub const PID_MODES: &[&str] = &["container", "pod"];

fn read_pid(_: &Ctx, b: &mut PodBuilder, v: &Value, at: &JsonPath) -> Result<(), Invalid> {
    b.pid = Some(one_of(v, at, PID_MODES)?.to_owned());
    Ok(())
}

/// A string that must be one of `allowed`.
fn one_of<'a>(v: &'a Value, at: &JsonPath, allowed: &[&str]) -> Result<&'a str, Invalid> {
    let s = json::string(v, at)?;
    if allowed.contains(&s) {
        return Ok(s);
    }
    let quoted: Vec<String> = allowed.iter().map(|a| format!("{a:?}")).collect();
    let (last, rest) = quoted.split_last().expect("a choice of values");
    let choices = match rest {
        [] => last.clone(),
        _ => format!("{} or {last}", rest.join(", ")),
    };
    Err(Invalid::new(at, format!("expected {choices}, got {s:?}")))
}

/// Every `after` names another container, and they form no cycle.
fn check_after(containers: &BTreeMap<String, Container>, at: &JsonPath) -> Result<(), Invalid> {
    for (name, c) in containers {
        for (i, dep) in c.after.iter().enumerate() {
            let dep_at = at.key(name).key("after").index(i);
            if dep == name || !containers.contains_key(dep) {
                return Err(Invalid::new(
                    &dep_at,
                    format!("{dep:?} is not another container of the pod"),
                ));
            }
        }
    }
    // Depth-first search for a cycle: 1 = on the path, 2 = done.
    fn visit<'a>(
        n: &'a str,
        cs: &'a BTreeMap<String, Container>,
        state: &mut BTreeMap<&'a str, u8>,
    ) -> Option<&'a str> {
        match state.get(n) {
            Some(1) => return Some(n),
            Some(_) => return None,
            None => {}
        }
        state.insert(n, 1);
        for d in &cs[n].after {
            if let Some(c) = visit(d, cs, state) {
                return Some(c);
            }
        }
        state.insert(n, 2);
        None
    }
    let mut state = BTreeMap::new();
    for name in containers.keys() {
        if let Some(c) = visit(name, containers, &mut state) {
            return Err(Invalid::new(
                &at.key(c).key("after"),
                "the containers' `after` lists form a cycle",
            ));
        }
    }
    Ok(())
}

// ---- volumes ----

/// `"volumes": {"work": {"type": "tmpfs"}, "data": {"source": "./data"}}`.
fn read_volumes(ctx: &Ctx, b: &mut PodBuilder, v: &Value, at: &JsonPath) -> Result<(), Invalid> {
    for (name, spec) in json::object(v, at)? {
        let vat = at.key(name);
        if !valid_name(name) {
            return Err(bad_name(&vat, name));
        }
        let obj = json::object(spec, &vat)?;
        for key in obj.keys() {
            if !["type", "source", "size"].contains(&key.as_str()) {
                return Err(Invalid::new(
                    &vat.key(key),
                    "unknown field (known fields: size, source, type)",
                ));
            }
        }
        let kind = match obj.get("type") {
            Some(t) => json::string(t, &vat.key("type"))?,
            None if obj.contains_key("source") => "bind",
            None => "tmpfs",
        };
        let not_allowed = |field: &str| {
            Err(Invalid::new(
                &vat.key(field),
                format!("not allowed in a {kind} volume"),
            ))
        };
        let volume = match kind {
            "tmpfs" if obj.contains_key("source") => return not_allowed("source"),
            "tmpfs" => Volume::Tmpfs {
                size: match obj.get("size") {
                    Some(v) => super::mounts::size_value(v, &vat.key("size"))?,
                    None => super::DEFAULT_TMPFS_SIZE,
                },
            },
            "bind" if obj.contains_key("size") => return not_allowed("size"),
            "bind" => {
                let src_at = vat.key("source");
                let Some(src) = obj.get("source") else {
                    return Err(Invalid::new(&src_at, "required field is missing"));
                };
                let rel = json::string(src, &src_at)?;
                Volume::Bind {
                    source: super::mounts::host_dir(&ctx.dir, rel, &src_at)?,
                }
            }
            other => {
                return Err(Invalid::new(
                    &vat.key("type"),
                    format!("expected \"tmpfs\" or \"bind\", got {other:?}"),
                ))
            }
        };
        b.volumes.insert(name.clone(), volume);
    }
    Ok(())
}

// ---- resources ----

/// Least guest memory a pod may ask for (the loader, stacks and page
/// tables need some).
const MIN_MEMORY: u64 = 32 << 20;
/// Most CPUs a pod may ask for.
const MAX_CPUS: u64 = 256;

const RESOURCE_FIELDS: &[Field<Ctx, Resources>] = &[
    Field {
        name: "memory",
        read: read_memory,
    },
    Field {
        name: "cpus",
        read: read_cpus,
    },
];

fn read_resources(ctx: &Ctx, b: &mut PodBuilder, v: &Value, at: &JsonPath) -> Result<(), Invalid> {
    json::read_object(ctx, &mut b.resources, RESOURCE_FIELDS, v, at)
}

fn read_memory(_: &Ctx, r: &mut Resources, v: &Value, at: &JsonPath) -> Result<(), Invalid> {
    let bytes = super::mounts::size_value(v, at)?;
    if bytes < MIN_MEMORY {
        return Err(Invalid::new(at, "must be at least 32MiB"));
    }
    r.memory = Some(bytes);
    Ok(())
}

fn read_cpus(_: &Ctx, r: &mut Resources, v: &Value, at: &JsonPath) -> Result<(), Invalid> {
    match v.as_u64() {
        Some(n) if (1..=MAX_CPUS).contains(&n) => {
            r.cpus = Some(n as u32);
            Ok(())
        }
        _ => Err(Invalid::new(
            at,
            format!("expected a whole number of CPUs from 1 to {MAX_CPUS}, got {v}"),
        )),
    }
}

fn read_pod_name(_: &Ctx, b: &mut PodBuilder, v: &Value, at: &JsonPath) -> Result<(), Invalid> {
    let name = json::string(v, at)?;
    if !valid_name(name) {
        return Err(bad_name(at, name));
    }
    b.name = Some(name.to_owned());
    Ok(())
}

fn bad_name(at: &JsonPath, name: &str) -> Invalid {
    Invalid::new(
        at,
        format!("{name:?} is not a valid name (letters, digits, '_', '.', '-'; not starting with '_', '.', '-')"),
    )
}

fn read_platform(_: &Ctx, b: &mut PodBuilder, v: &Value, at: &JsonPath) -> Result<(), Invalid> {
    b.platform = Some(one_of(v, at, PLATFORMS)?.to_owned());
    Ok(())
}

fn read_images(ctx: &Ctx, b: &mut PodBuilder, v: &Value, at: &JsonPath) -> Result<(), Invalid> {
    for (name, value) in json::object(v, at)? {
        let image_at = at.key(name);
        if name.is_empty() {
            return Err(Invalid::new(&image_at, "image names must not be empty"));
        }
        let mut ib = ImageBuilder::default();
        json::read_object(ctx, &mut ib, IMAGE_FIELDS, value, &image_at)?;
        b.images.insert(name.clone(), ib.finish(&image_at)?);
    }
    Ok(())
}

fn read_containers(ctx: &Ctx, b: &mut PodBuilder, v: &Value, at: &JsonPath) -> Result<(), Invalid> {
    let mut containers = BTreeMap::new();
    for (name, value) in json::object(v, at)? {
        let container_at = at.key(name);
        if !valid_name(name) {
            return Err(bad_name(&container_at, name));
        }
        let mut cb = ContainerBuilder::default();
        json::read_object(ctx, &mut cb, CONTAINER_FIELDS, value, &container_at)?;
        containers.insert(name.clone(), cb);
    }
    b.containers = Some(containers);
    Ok(())
}

impl PodBuilder {
    fn finish(self, ctx: &Ctx, default_name: String) -> Result<Pod, Invalid> {
        let at = JsonPath::root().key("containers");
        let Some(builders) = self.containers else {
            return Err(Invalid::new(&at, "required field is missing"));
        };
        if builders.is_empty() {
            return Err(Invalid::new(&at, "expected at least one container"));
        }
        let mut images = self.images;
        let mut containers = BTreeMap::new();
        // A pod of one container gives it stdin unless it says no.
        let only = builders.len() == 1;
        for (name, cb) in builders {
            let c_at = at.key(&name);
            let c = cb.finish(ctx, &mut images, &c_at, only)?;
            for (i, m) in c.mounts.iter().enumerate() {
                if let Mount::Volume { name: v, .. } = m {
                    if !self.volumes.contains_key(v) {
                        let m_at = c_at.key("mounts").index(i).key("volume");
                        return Err(Invalid::new(&m_at, format!("no volume {v:?} in volumes")));
                    }
                }
            }
            containers.insert(name, c);
        }
        check_after(&containers, &at)?;
        if containers.values().all(|c| c.background) {
            return Err(Invalid::new(
                &at,
                "every container is a background helper: at least one must not be",
            ));
        }
        check_stdin(&containers, &at)?;
        Ok(Pod {
            name: self.name.unwrap_or(default_name),
            dir: ctx.dir.clone(),
            images,
            containers,
            platform: self.platform.unwrap_or_else(|| "auto".to_owned()),
            resources: Resources {
                memory: self.resources.memory.or(Some(super::DEFAULT_MEMORY)),
                ..self.resources
            },
            volumes: self.volumes,
            pid: self.pid.unwrap_or_else(|| "container".to_owned()),
        })
    }
}

// ---- images ----

#[derive(Default)]
struct ImageBuilder {
    path: Option<PathBuf>,
    sha256: Option<String>,
}

const IMAGE_FIELDS: &[Field<Ctx, ImageBuilder>] = &[
    Field {
        name: "path",
        read: read_image_path,
    },
    Field {
        name: "sha256",
        read: read_sha256,
    },
];

fn read_image_path(
    ctx: &Ctx,
    b: &mut ImageBuilder,
    v: &Value,
    at: &JsonPath,
) -> Result<(), Invalid> {
    let rel = json::string(v, at)?;
    let Some(path) = existing_file(&ctx.dir, rel) else {
        let shown = ctx.dir.join(rel).display().to_string();
        return Err(Invalid::new(
            at,
            format!("{shown:?} is not an existing file"),
        ));
    };
    b.path = Some(path);
    Ok(())
}

fn read_sha256(_: &Ctx, b: &mut ImageBuilder, v: &Value, at: &JsonPath) -> Result<(), Invalid> {
    let s = json::string(v, at)?;
    if s.len() != 64 || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(Invalid::new(at, "expected 64 hex digits"));
    }
    b.sha256 = Some(s.to_ascii_lowercase());
    Ok(())
}

impl ImageBuilder {
    fn finish(self, at: &JsonPath) -> Result<Image, Invalid> {
        let Some(path) = self.path else {
            return Err(Invalid::new(&at.key("path"), "required field is missing"));
        };
        Ok(Image {
            path,
            sha256: self.sha256,
        })
    }
}

/// The canonical path of the regular file `rel` (relative to `dir`, or
/// absolute), if there is one.
fn existing_file(dir: &Path, rel: &str) -> Option<PathBuf> {
    let path = std::fs::canonicalize(dir.join(rel)).ok()?;
    path.is_file().then_some(path)
}

// ---- containers ----

struct ContainerBuilder {
    image: Option<String>,
    command: Option<Vec<String>>,
    env: BTreeMap<String, String>,
    workdir: String,
    user: User,
    init: bool,
    mounts: Vec<Mount>,
    after: Vec<String>,
    background: bool,
    stdin: Option<bool>,
    tty: bool,
}

impl Default for ContainerBuilder {
    fn default() -> Self {
        ContainerBuilder {
            image: None,
            command: None,
            env: BTreeMap::new(),
            workdir: "/".to_owned(),
            user: User::default(),
            init: true,
            mounts: Vec::new(),
            after: Vec::new(),
            background: false,
            stdin: None,
            tty: false,
        }
    }
}

const CONTAINER_FIELDS: &[Field<Ctx, ContainerBuilder>] = &[
    Field {
        name: "image",
        read: read_image_ref,
    },
    Field {
        name: "command",
        read: read_command,
    },
    Field {
        name: "env",
        read: read_env,
    },
    Field {
        name: "workdir",
        read: read_workdir,
    },
    Field {
        name: "user",
        read: read_user,
    },
    Field {
        name: "init",
        read: read_init,
    },
    Field {
        name: "mounts",
        read: read_mounts,
    },
    Field {
        name: "after",
        read: read_after,
    },
    Field {
        name: "background",
        read: read_background,
    },
    Field {
        name: "stdin",
        read: read_stdin,
    },
    Field {
        name: "tty",
        read: read_tty,
    },
];

fn read_background(_: &Ctx, b: &mut ContainerBuilder, v: &Value, at: &JsonPath) -> ReadResult {
    b.background = json_bool(v, at)?;
    Ok(())
}

fn read_stdin(_: &Ctx, b: &mut ContainerBuilder, v: &Value, at: &JsonPath) -> ReadResult {
    b.stdin = Some(json_bool(v, at)?);
    Ok(())
}

fn read_tty(_: &Ctx, b: &mut ContainerBuilder, v: &Value, at: &JsonPath) -> ReadResult {
    b.tty = json_bool(v, at)?;
    Ok(())
}

fn json_bool(v: &Value, at: &JsonPath) -> Result<bool, Invalid> {
    v.as_bool()
        .ok_or_else(|| Invalid::new(at, "expected true or false"))
}

/// At most one container reads the launcher's stdin.
fn check_stdin(containers: &BTreeMap<String, Container>, at: &JsonPath) -> Result<(), Invalid> {
    let mut readers = containers.iter().filter(|(_, c)| c.stdin).map(|(n, _)| n);
    if let (Some(first), Some(second)) = (readers.next(), readers.next()) {
        return Err(Invalid::new(
            &at.key(second).key("stdin"),
            format!("only one container may read stdin, and {first:?} does"),
        ));
    }
    Ok(())
}

fn read_after(_: &Ctx, b: &mut ContainerBuilder, v: &Value, at: &JsonPath) -> ReadResult {
    b.after = json::strings(v, at)?;
    Ok(())
}

type ReadResult = Result<(), Invalid>;

fn read_image_ref(_: &Ctx, b: &mut ContainerBuilder, v: &Value, at: &JsonPath) -> ReadResult {
    let s = json::string(v, at)?;
    if s.is_empty() {
        return Err(Invalid::new(at, "must not be empty"));
    }
    b.image = Some(s.to_owned());
    Ok(())
}

fn read_command(_: &Ctx, b: &mut ContainerBuilder, v: &Value, at: &JsonPath) -> ReadResult {
    let argv = json::strings(v, at)?;
    if argv.is_empty() {
        return Err(Invalid::new(at, "expected at least one string"));
    }
    b.command = Some(argv);
    Ok(())
}

fn read_env(_: &Ctx, b: &mut ContainerBuilder, v: &Value, at: &JsonPath) -> ReadResult {
    for (key, value) in json::object(v, at)? {
        let var_at = at.key(key);
        if key.is_empty() || key.contains('=') {
            return Err(Invalid::new(
                &var_at,
                "variable names must be non-empty and without '='",
            ));
        }
        json::no_nul(key, &var_at)?;
        let value = json::string(value, &var_at)?;
        b.env.insert(key.clone(), value.to_owned());
    }
    Ok(())
}

fn read_init(_: &Ctx, b: &mut ContainerBuilder, v: &Value, at: &JsonPath) -> ReadResult {
    b.init = v
        .as_bool()
        .ok_or_else(|| Invalid::new(at, "expected true or false"))?;
    Ok(())
}

fn read_mounts(ctx: &Ctx, b: &mut ContainerBuilder, v: &Value, at: &JsonPath) -> ReadResult {
    b.mounts = super::mounts::read_mounts(ctx, v, at)?;
    Ok(())
}

fn read_workdir(_: &Ctx, b: &mut ContainerBuilder, v: &Value, at: &JsonPath) -> ReadResult {
    let dir = json::string(v, at)?;
    if !dir.starts_with('/') {
        return Err(Invalid::new(
            at,
            format!("expected an absolute path, got {dir:?}"),
        ));
    }
    b.workdir = dir.to_owned();
    Ok(())
}

fn read_user(_: &Ctx, b: &mut ContainerBuilder, v: &Value, at: &JsonPath) -> ReadResult {
    let s = json::string(v, at)?;
    b.user = parse_user(s).ok_or_else(|| {
        Invalid::new(
            at,
            format!("expected \"UID\" or \"UID:GID\" (decimal, below 4294967295), got {s:?}"),
        )
    })?;
    Ok(())
}

/// "UID" or "UID:GID" in decimal. A lone UID runs with GID 0, as container
/// engines do when the image has no passwd entry to look it up in. The id
/// 4294967295 is refused: to the kernel it means "unchanged".
pub fn parse_user(s: &str) -> Option<User> {
    fn id(s: &str) -> Option<u32> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok().filter(|&n| n != u32::MAX)
    }
    match s.split_once(':') {
        Some((uid, gid)) => Some(User {
            uid: id(uid)?,
            gid: id(gid)?,
        }),
        None => Some(User {
            uid: id(s)?,
            gid: 0,
        }),
    }
}

impl ContainerBuilder {
    fn finish(
        self,
        ctx: &Ctx,
        images: &mut BTreeMap<String, Image>,
        at: &JsonPath,
        only: bool,
    ) -> Result<Container, Invalid> {
        let image_at = at.key("image");
        let Some(image) = self.image else {
            return Err(Invalid::new(&image_at, "required field is missing"));
        };
        let Some(command) = self.command else {
            return Err(Invalid::new(
                &at.key("command"),
                "required field is missing",
            ));
        };
        resolve_image_ref(ctx, images, &image, &image_at)?;
        Ok(Container {
            image,
            command,
            env: self.env,
            workdir: self.workdir,
            user: self.user,
            init: self.init,
            mounts: self.mounts,
            after: self.after,
            background: self.background,
            stdin: self.stdin.unwrap_or(only),
            tty: self.tty,
        })
    }
}

/// Makes `image` a key of `images`: either it is one already, or it is the
/// path of a bundle and an entry keyed by that path string is added.
fn resolve_image_ref(
    ctx: &Ctx,
    images: &mut BTreeMap<String, Image>,
    image: &str,
    at: &JsonPath,
) -> Result<(), Invalid> {
    if images.contains_key(image) {
        return Ok(());
    }
    let Some(path) = existing_file(&ctx.dir, image) else {
        return Err(Invalid::new(
            at,
            format!("{image:?} is neither an image name nor an existing file"),
        ));
    };
    let synthesized = Image { path, sha256: None };
    images.insert(image.to_owned(), synthesized);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::TestDir;
    use serde_json::json;

    const HEX: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    /// Evaluates `v` in a directory holding the bundle `root.tar`.
    fn eval(v: Value) -> Result<Pod, Invalid> {
        let dir = TestDir::new();
        dir.file("root.tar", "");
        evaluate(&v, &Ctx { dir: dir.0.clone() }, "dflt".to_owned())
    }

    /// The error of evaluating `v`, as "<json path>: <message>".
    fn err(v: Value) -> String {
        let e = eval(v).expect_err("expected an error");
        format!("{}: {}", e.at, e.msg)
    }

    /// A pod with the single container `app` given by `c`.
    fn with_app(c: Value) -> Value {
        json!({ "containers": { "app": c } })
    }

    fn app(extra: Value) -> Value {
        let mut c = json!({"image": "root.tar", "command": ["/bin/true"]});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        with_app(c)
    }

    #[test]
    fn evaluate_top_level_array_expects_object() {
        assert_eq!(
            err(json!([])),
            "top level: expected an object, got an array"
        );
    }

    #[test]
    fn evaluate_after_names_other_containers_without_cycles() {
        let mut v = app(json!({"after": ["nope"]}));
        assert_eq!(
            err(v.clone()),
            "containers.app.after[0]: \"nope\" is not another container of the pod"
        );
        v["containers"]["b"] =
            json!({"image": "root.tar", "command": ["/bin/true"], "after": ["app"]});
        v["containers"]["app"]["after"] = json!(["b"]);
        assert!(err(v.clone()).contains("form a cycle"), "{}", err(v));
    }

    #[test]
    fn evaluate_unknown_top_level_field_is_refused() {
        let mut v = app(json!({}));
        v["nmae"] = json!("x");
        assert!(err(v).starts_with("nmae: unknown field"));
    }

    #[test]
    fn evaluate_future_fields_are_not_accepted_yet() {
        let mut v = app(json!({}));
        v["network"] = json!(null);
        assert!(err(v).starts_with("network: unknown field"));
        let e = err(app(json!({ "cpus": null })));
        assert!(e.starts_with("containers.app.cpus: unknown field"), "{e}");
    }

    #[test]
    fn evaluate_stdin_defaults_to_the_only_container_and_one_reader() {
        let pod = eval(app(json!({"tty": true}))).unwrap();
        assert!(pod.containers["app"].stdin && pod.containers["app"].tty);
        let mut v = app(json!({}));
        let b = json!({"image": "root.tar", "command": ["/bin/true"]});
        v["containers"]["b"] = b.clone();
        let pod = eval(v.clone()).unwrap();
        assert!(!pod.containers["app"].stdin && !pod.containers["b"].stdin);
        v["containers"]["app"]["stdin"] = json!(true);
        v["containers"]["b"]["stdin"] = json!(true);
        assert_eq!(
            err(v),
            "containers.b.stdin: only one container may read stdin, and \"app\" does"
        );
    }

    #[test]
    fn evaluate_misspelled_container_field_is_named() {
        let e = err(with_app(json!({"image": "root.tar", "comand": ["x"]})));
        assert_eq!(
            e,
            "containers.app.comand: unknown field (known fields: after, background, command, env, image, init, mounts, stdin, tty, user, workdir)"
        );
    }

    #[test]
    fn evaluate_only_background_containers_is_refused() {
        let e = err(app(json!({"background": true})));
        assert_eq!(
            e,
            "containers: every container is a background helper: at least one must not be"
        );
        let e = err(app(json!({"background": 1})));
        assert_eq!(e, "containers.app.background: expected true or false");
    }

    #[test]
    fn evaluate_missing_containers_is_refused() {
        assert_eq!(err(json!({})), "containers: required field is missing");
    }

    #[test]
    fn evaluate_empty_containers_is_refused() {
        let e = err(json!({"containers": {}}));
        assert_eq!(e, "containers: expected at least one container");
    }

    #[test]
    fn evaluate_invalid_container_name_is_refused() {
        for name in [".app", "-x", "a/b", "a b", ""] {
            let e = err(json!({ "containers": { name: {} } }));
            assert!(e.contains("is not a valid name"), "{name}: {e}");
        }
    }

    #[test]
    fn valid_name_accepts_allowed_characters() {
        assert!(valid_name("a"));
        assert!(valid_name("App_1.b-2"));
        assert!(valid_name("0x"));
        assert!(!valid_name("_a"));
    }

    #[test]
    fn evaluate_command_number_names_expected_type() {
        let e = err(app(json!({"command": 3})));
        assert_eq!(
            e,
            "containers.app.command: expected an array of strings, got a number"
        );
    }

    #[test]
    fn evaluate_empty_command_is_refused() {
        let e = err(app(json!({"command": []})));
        assert_eq!(e, "containers.app.command: expected at least one string");
    }

    #[test]
    fn evaluate_missing_command_is_refused() {
        let e = err(with_app(json!({"image": "root.tar"})));
        assert_eq!(e, "containers.app.command: required field is missing");
    }

    #[test]
    fn evaluate_missing_image_is_refused() {
        let e = err(with_app(json!({"command": ["x"]})));
        assert_eq!(e, "containers.app.image: required field is missing");
    }

    #[test]
    fn evaluate_unknown_image_is_refused() {
        let e = err(app(json!({"image": "x.tar.gz"})));
        assert_eq!(
            e,
            r#"containers.app.image: "x.tar.gz" is neither an image name nor an existing file"#
        );
    }

    #[test]
    fn evaluate_image_name_refers_to_images_entry() {
        let mut v = app(json!({"image": "base"}));
        v["images"] = json!({"base": {"path": "./root.tar", "sha256": HEX.to_uppercase()}});
        let pod = eval(v).unwrap();
        assert_eq!(pod.containers["app"].image, "base");
        assert_eq!(pod.images.len(), 1);
        assert!(pod.images["base"].path.ends_with("root.tar"));
        assert_eq!(pod.images["base"].sha256.as_deref(), Some(HEX));
    }

    #[test]
    fn evaluate_bad_sha256_is_refused() {
        for bad in ["abc", &HEX.replace('a', "g"), &format!("{HEX}0")] {
            let mut v = app(json!({}));
            v["images"] = json!({"busybox": {"path": "root.tar", "sha256": bad}});
            assert_eq!(err(v), "images.busybox.sha256: expected 64 hex digits");
        }
    }

    #[test]
    fn evaluate_image_without_path_is_refused() {
        let mut v = app(json!({}));
        v["images"] = json!({"b": {"sha256": HEX}});
        assert_eq!(err(v), "images.b.path: required field is missing");
    }

    #[test]
    fn evaluate_image_path_missing_file_is_refused() {
        let mut v = app(json!({}));
        v["images"] = json!({"b": {"path": "gone.tar"}});
        let e = err(v);
        assert!(e.starts_with("images.b.path: \"/"), "{e}");
        assert!(e.ends_with("gone.tar\" is not an existing file"), "{e}");
    }

    #[test]
    fn evaluate_unknown_image_field_is_refused() {
        let mut v = app(json!({}));
        v["images"] = json!({"b": {"path": "root.tar", "digest": HEX}});
        assert!(err(v).starts_with("images.b.digest: unknown field"));
    }

    #[test]
    fn evaluate_name_and_platform_are_read() {
        let mut v = app(json!({}));
        v["name"] = json!("web-1");
        v["platform"] = json!("ptrace");
        let pod = eval(v).unwrap();
        assert_eq!(
            (pod.name.as_str(), pod.platform.as_str()),
            ("web-1", "ptrace")
        );
    }

    #[test]
    fn evaluate_missing_name_uses_default() {
        assert_eq!(eval(app(json!({}))).unwrap().name, "dflt");
    }

    #[test]
    fn evaluate_bad_platform_is_refused() {
        let mut v = app(json!({}));
        v["platform"] = json!("qemu");
        assert_eq!(
            err(v),
            r#"platform: expected "auto", "kvm" or "ptrace", got "qemu""#
        );
    }

    #[test]
    fn evaluate_bad_pod_name_is_refused() {
        let mut v = app(json!({}));
        v["name"] = json!("../x");
        assert!(err(v).starts_with(r#"name: "../x" is not a valid name"#));
    }

    #[test]
    fn evaluate_relative_workdir_is_refused() {
        let e = err(app(json!({"workdir": "src"})));
        assert_eq!(
            e,
            r#"containers.app.workdir: expected an absolute path, got "src""#
        );
    }

    #[test]
    fn evaluate_workdir_and_env_are_read() {
        let pod = eval(app(json!({"workdir": "/src", "env": {"A": "1", "B": ""}}))).unwrap();
        let c = &pod.containers["app"];
        assert_eq!(c.workdir, "/src");
        assert_eq!(c.env["A"], "1");
        assert_eq!(c.env["B"], "");
    }

    #[test]
    fn evaluate_env_key_with_equals_is_refused() {
        let e = err(app(json!({"env": {"A=B": "1"}})));
        assert!(
            e.starts_with(r#"containers.app.env["A=B"]: variable names"#),
            "{e}"
        );
    }

    #[test]
    fn evaluate_empty_env_key_is_refused() {
        let e = err(app(json!({"env": {"": "1"}})));
        assert!(
            e.starts_with(r#"containers.app.env[""]: variable names"#),
            "{e}"
        );
    }

    #[test]
    fn evaluate_env_number_value_is_refused() {
        let e = err(app(json!({"env": {"N": 1}})));
        assert_eq!(e, "containers.app.env.N: expected a string, got a number");
    }

    #[test]
    fn evaluate_env_array_is_refused() {
        let e = err(app(json!({"env": ["A=1"]})));
        assert_eq!(e, "containers.app.env: expected an object, got an array");
    }

    #[test]
    fn evaluate_user_forms_are_parsed() {
        let pod = eval(app(json!({"user": "1000:2000"}))).unwrap();
        assert_eq!(
            pod.containers["app"].user,
            User {
                uid: 1000,
                gid: 2000
            }
        );
        let pod = eval(app(json!({"user": "7"}))).unwrap();
        assert_eq!(pod.containers["app"].user, User { uid: 7, gid: 0 });
    }

    #[test]
    fn evaluate_bad_user_is_refused() {
        for bad in [
            "abc",
            "1:",
            ":1",
            "+1",
            "-1",
            "1:2:3",
            "4294967295",
            "99999999999",
        ] {
            let e = err(app(json!({ "user": bad })));
            assert!(
                e.starts_with("containers.app.user: expected \"UID\""),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn evaluate_user_number_is_refused() {
        let e = err(app(json!({"user": 1000})));
        assert_eq!(e, "containers.app.user: expected a string, got a number");
    }
}
