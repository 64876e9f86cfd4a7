//! Pod file composition, nix-style: `"imports": ["base.json", ...]` pulls
//! other pod files in under the importing one.
//!
//! [`compose`] reads a file and, depth first, the files it imports; the
//! result is the imports merged in their order, then the importing file
//! merged over them: later wins, objects merge member by member (deeply),
//! anything else (lists included) is replaced whole. Imported files may be
//! fragments (no `containers`); only the composed document is checked
//! against the schema.
//!
//! Relative paths are relative to the file that wrote them, so before an
//! imported file is merged its paths (`images.*.path`, `volumes.*.source`,
//! `containers.*.mounts[*].source`, and a container `image` that is a
//! bundle file next to it) are made absolute.
//!
//! Every member of the composed document remembers the file it came from
//! ([`Origins`]), so a schema error names the file that wrote the
//! offending value. Cycles and unreadable or malformed imported files are
//! refused in one line naming the file and the JSON path of the import.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::json::{self, JsonPath};
use super::PodError;

/// Which file wrote each member of a composed document, keyed by JSON
/// path (`""` is the document itself).
#[derive(Debug, Default)]
pub struct Origins(BTreeMap<String, PathBuf>);

impl Origins {
    /// The file that wrote the value at `at`, or the nearest enclosing
    /// value that has one.
    pub fn file_of(&self, at: &JsonPath) -> Option<&Path> {
        let mut path = at.as_str();
        loop {
            if let Some(f) = self.0.get(path) {
                return Some(f);
            }
            if path.is_empty() {
                return None;
            }
            path = parent(path);
        }
    }

    /// `file` wrote the whole value `v` at `at`: earlier origins inside
    /// it go, and every member of `v` is `file`'s.
    fn replace(&mut self, at: &JsonPath, v: &Value, file: &Path) {
        self.0.retain(|k, _| !inside(k, at.as_str()));
        self.record(at, v, file);
    }

    fn record(&mut self, at: &JsonPath, v: &Value, file: &Path) {
        self.0.insert(at.as_str().to_owned(), file.to_owned());
        match v {
            Value::Object(m) => m.iter().for_each(|(k, v)| self.record(&at.key(k), v, file)),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .for_each(|(i, v)| self.record(&at.index(i), v, file)),
            _ => {}
        }
    }
}

/// The path of the value enclosing the one at `path`.
fn parent(path: &str) -> &str {
    // A last component `[2]` or `["a.b"]` starts at the last '['; a plain
    // key has no '.' of its own, so it starts after the last '.'.
    let cut = if path.ends_with(']') {
        path.rfind('[')
    } else {
        path.rfind('.')
    };
    cut.map_or("", |i| &path[..i])
}

/// Whether `path` is `at` or lies inside the value at `at`.
fn inside(path: &str, at: &str) -> bool {
    at.is_empty()
        || path == at
        || path
            .strip_prefix(at)
            .is_some_and(|rest| rest.starts_with(['.', '[']))
}

/// Reads the pod file `path` and everything it imports, and merges them.
pub fn compose(path: &Path) -> Result<(Value, Origins), PodError> {
    let mut origins = Origins::default();
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let value = compose_file(path, &mut vec![canonical], &mut origins, false)?;
    Ok((value, origins))
}

fn read_json(path: &Path) -> Result<Value, PodError> {
    let text = std::fs::read_to_string(path).map_err(|source| PodError::Read {
        file: path.to_owned(),
        source,
    })?;
    json::parse_strict(&text).map_err(|e| PodError::parse(path.to_owned(), &e))
}

fn invalid(file: &Path, at: &JsonPath, msg: impl Into<String>) -> PodError {
    PodError::Validate {
        file: file.to_owned(),
        at: at.to_string(),
        msg: msg.into(),
    }
}

/// Composes `path` (whose canonical form is the last of `stack`, the chain
/// of files importing each other). `imported`: paths in it are made
/// absolute.
fn compose_file(
    path: &Path,
    stack: &mut Vec<PathBuf>,
    origins: &mut Origins,
    imported: bool,
) -> Result<Value, PodError> {
    let mut own = read_json(path)?;
    let imports = match own.as_object_mut() {
        Some(members) => members.remove("imports"),
        None => None,
    };
    let dir = path.parent().unwrap_or(Path::new("")).to_owned();
    let mut merged = Value::Object(Map::new());
    if let Some(list) = imports {
        let at = JsonPath::root().key("imports");
        let names = json::strings(&list, &at).map_err(|e| invalid(path, &e.at, e.msg))?;
        for (i, name) in names.iter().enumerate() {
            let item_at = at.index(i);
            let file = dir.join(name);
            let canonical = std::fs::canonicalize(&file).map_err(|e| {
                let why = nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
                invalid(
                    path,
                    &item_at,
                    format!("{}: {}", file.display(), why.desc()),
                )
            })?;
            if let Some(start) = stack.iter().position(|p| *p == canonical) {
                let chain: Vec<String> = stack[start..]
                    .iter()
                    .chain([&canonical])
                    .map(|p| p.display().to_string())
                    .collect();
                return Err(invalid(
                    path,
                    &item_at,
                    format!("import cycle: {}", chain.join(" -> ")),
                ));
            }
            stack.push(canonical);
            let v = compose_file(&file, stack, origins, true)?;
            stack.pop();
            merge(&mut merged, v, &JsonPath::root(), None, origins);
        }
    }
    if imported {
        absolutize(&mut own, &dir, &merged);
    }
    merge(&mut merged, own, &JsonPath::root(), Some(path), origins);
    Ok(merged)
}

/// Merges `src` over `dst` at `at`: objects member by member, anything else
/// replaced. With `file`, records it as the origin of what `src` brings
/// (None: `src` is an already composed document whose origins are known).
fn merge(dst: &mut Value, src: Value, at: &JsonPath, file: Option<&Path>, origins: &mut Origins) {
    match (dst, src) {
        (Value::Object(d), Value::Object(s)) => {
            if let Some(f) = file {
                origins.0.insert(at.as_str().to_owned(), f.to_owned());
            }
            for (k, v) in s {
                let k_at = at.key(&k);
                match d.get_mut(&k) {
                    Some(slot) => merge(slot, v, &k_at, file, origins),
                    None => {
                        if let Some(f) = file {
                            origins.replace(&k_at, &v, f);
                        }
                        d.insert(k, v);
                    }
                }
            }
        }
        (dst, src) => {
            if let Some(f) = file {
                origins.replace(at, &src, f);
            }
            *dst = src;
        }
    }
}

/// Makes the relative paths of an imported document absolute (relative to
/// `dir`, its file's directory). `below` is what it imports itself (its
/// images count when telling an image name from a bundle path).
fn absolutize(v: &mut Value, dir: &Path, below: &Value) {
    let abs = |s: &mut Value| {
        if let Value::String(p) = s {
            if !p.starts_with('/') {
                *p = absolute(dir, p);
            }
        }
    };
    let Some(doc) = v.as_object_mut() else {
        return;
    };
    let mut image_names: Vec<String> = Vec::new();
    for images in [doc.get("images"), below.get("images")]
        .into_iter()
        .flatten()
    {
        if let Some(m) = images.as_object() {
            image_names.extend(m.keys().cloned());
        }
    }
    for (key, field) in [("images", "path"), ("volumes", "source")] {
        for entry in members(doc.get_mut(key)) {
            if let Some(p) = entry.get_mut(field) {
                abs(p);
            }
        }
    }
    for c in members(doc.get_mut("containers")) {
        if let Some(Value::String(image)) = c.get_mut("image") {
            if !image.starts_with('/')
                && !image_names.contains(image)
                && dir.join(&*image).is_file()
            {
                *image = absolute(dir, image);
            }
        }
        if let Some(Value::Array(mounts)) = c.get_mut("mounts") {
            for m in mounts.iter_mut().filter_map(Value::as_object_mut) {
                if let Some(p) = m.get_mut("source") {
                    abs(p);
                }
            }
        }
    }
}

/// The member objects of an object value (none if it is something else).
fn members(v: Option<&mut Value>) -> impl Iterator<Item = &mut Map<String, Value>> {
    v.and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|m| m.values_mut().filter_map(Value::as_object_mut))
}

/// `rel` under `dir`, made absolute with `.` and `..` resolved lexically
/// (as the importing file's author reads it).
fn absolute(dir: &Path, rel: &str) -> String {
    use std::path::Component;
    let joined = std::path::absolute(dir.join(rel)).unwrap_or_else(|_| dir.join(rel));
    let mut tidy = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                tidy.pop();
            }
            Component::CurDir => {}
            other => tidy.push(other),
        }
    }
    tidy.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::TestDir;
    use serde_json::json;

    fn write(dir: &TestDir, name: &str, v: Value) -> PathBuf {
        dir.file(name, &v.to_string())
    }

    #[test]
    fn compose_later_wins_objects_merge_lists_replace() {
        let dir = TestDir::new();
        write(
            &dir,
            "a.json",
            json!({"name": "a", "containers": {"app": {"command": ["x", "y"], "env": {"A": "1", "B": "1"}}}}),
        );
        write(&dir, "b.json", json!({"name": "b"}));
        let top = write(
            &dir,
            "top.json",
            json!({"imports": ["a.json", "b.json"], "containers": {"app": {"command": ["z"], "env": {"B": "2"}}}}),
        );
        let (v, _) = compose(&top).unwrap();
        assert_eq!(
            v,
            json!({"name": "b", "containers": {"app": {"command": ["z"], "env": {"A": "1", "B": "2"}}}})
        );
    }

    #[test]
    fn compose_origins_name_the_writing_file() {
        let dir = TestDir::new();
        let sub = TestDir(dir.0.join("sub"));
        std::fs::create_dir(&sub.0).unwrap();
        write(
            &sub,
            "a.json",
            json!({"containers": {"app": {"env": {"A": 1}}}}),
        );
        let top = write(
            &dir,
            "top.json",
            json!({"imports": ["sub/a.json"], "containers": {"app": {"command": ["z"]}}}),
        );
        let (_, o) = compose(&top).unwrap();
        let env_a = JsonPath::root()
            .key("containers")
            .key("app")
            .key("env")
            .key("A");
        assert_eq!(o.file_of(&env_a), Some(dir.0.join("sub/a.json").as_path()));
        let cmd = JsonPath::root()
            .key("containers")
            .key("app")
            .key("command")
            .index(0);
        assert_eq!(o.file_of(&cmd), Some(top.as_path()));
        std::mem::forget(sub);
    }

    #[test]
    fn compose_imported_paths_become_absolute() {
        let dir = TestDir::new();
        std::fs::create_dir(dir.0.join("lib")).unwrap();
        dir.file("lib/root.tar", "");
        write(
            &dir,
            "lib/base.json",
            json!({"images": {"i": {"path": "root.tar"}}, "volumes": {"v": {"source": "."}},
                   "containers": {"a": {"image": "root.tar", "mounts": [{"source": "../x", "target": "/x"}]},
                                  "b": {"image": "i"}}}),
        );
        let top = write(&dir, "top.json", json!({"imports": ["lib/base.json"]}));
        let (v, _) = compose(&top).unwrap();
        let lib = dir.0.join("lib").display().to_string();
        assert_eq!(v["images"]["i"]["path"], format!("{lib}/root.tar"));
        assert_eq!(v["volumes"]["v"]["source"], lib);
        assert_eq!(v["containers"]["a"]["image"], format!("{lib}/root.tar"));
        assert_eq!(v["containers"]["b"]["image"], "i");
        let x = dir.0.join("x").display().to_string();
        assert_eq!(v["containers"]["a"]["mounts"][0]["source"], x);
    }

    #[test]
    fn compose_cycle_is_refused_naming_the_import() {
        let dir = TestDir::new();
        write(&dir, "a.json", json!({"imports": ["b.json"]}));
        write(&dir, "b.json", json!({"imports": ["a.json"]}));
        let e = compose(&dir.0.join("a.json")).unwrap_err().to_string();
        let d = std::fs::canonicalize(&dir.0).unwrap();
        let d = d.display();
        assert_eq!(
            e,
            format!("{d}/b.json: imports[0]: import cycle: {d}/a.json -> {d}/b.json -> {d}/a.json")
        );
    }

    #[test]
    fn compose_diamond_is_not_a_cycle() {
        let dir = TestDir::new();
        write(&dir, "base.json", json!({"name": "x"}));
        write(&dir, "l.json", json!({"imports": ["base.json"]}));
        write(&dir, "r.json", json!({"imports": ["base.json"]}));
        let top = write(&dir, "top.json", json!({"imports": ["l.json", "r.json"]}));
        assert_eq!(compose(&top).unwrap().0, json!({"name": "x"}));
    }

    #[test]
    fn compose_missing_import_names_file_and_path() {
        let dir = TestDir::new();
        let top = write(&dir, "top.json", json!({"imports": ["gone.json"]}));
        let e = compose(&top).unwrap_err().to_string();
        let d = dir.0.display();
        assert_eq!(
            e,
            format!("{d}/top.json: imports[0]: {d}/gone.json: No such file or directory")
        );
    }

    #[test]
    fn compose_malformed_import_names_that_file() {
        let dir = TestDir::new();
        dir.file("bad.json", "{\"name\": }");
        let top = write(&dir, "top.json", json!({"imports": ["bad.json"]}));
        let e = compose(&top).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "{}/bad.json: line 1 column 10: expected value",
                dir.0.display()
            )
        );
    }

    #[test]
    fn compose_imports_not_a_list_is_refused() {
        let dir = TestDir::new();
        let top = write(&dir, "top.json", json!({"imports": "a.json"}));
        let e = compose(&top).unwrap_err().to_string();
        assert!(
            e.ends_with("top.json: imports: expected an array of strings, got a string"),
            "{e}"
        );
    }

    #[test]
    fn inside_respects_component_boundaries() {
        assert!(inside("a.b", "a"));
        assert!(inside("a[0]", "a"));
        assert!(!inside("ab", "a"));
        assert!(inside("x", ""));
        assert_eq!(parent("a.b[1]"), "a.b");
        assert_eq!(parent("a"), "");
        assert_eq!(parent(r#"i["a.b"]"#), "i");
        assert_eq!(parent(r#"i["a.b"].path"#), r#"i["a.b"]"#);
    }
}
