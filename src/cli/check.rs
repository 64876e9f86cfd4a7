//! `sandboxd check`: validate a pod file and print it fully evaluated, so
//! that defaults, absolute paths and synthesized images can be seen.

use std::path::{Path, PathBuf};

use argh::FromArgs;

use crate::pod::{Pod, PodError};

/// Check a pod file and print it fully evaluated as JSON: defaults applied,
/// paths absolute, images given by path listed under "images".
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "check", help_triggers("-h", "--help", "help"))]
pub struct CheckCmd {
    /// the pod file to check
    #[argh(positional, arg_name = "POD.json")]
    pod: PathBuf,
}

/// Why `check` failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    LoadPod(#[from] PodError),
    #[error("cannot print the pod as JSON")]
    PrintPod(#[source] serde_json::Error),
}

/// The fully evaluated pod as pretty JSON.
pub fn render_pod(pod: &Pod) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(pod)
}

fn check(path: &Path) -> Result<String, CheckError> {
    let pod = crate::pod::load(path)?;
    render_pod(&pod).map_err(CheckError::PrintPod)
}

impl CheckCmd {
    pub(super) fn execute(self) -> i32 {
        super::logger::init("sandboxd", None);
        match check(&self.pod) {
            Ok(json) => {
                println!("{json}");
                0
            }
            Err(e) => super::fail(&e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::TestDir;

    const SAMPLE: &str = r#"{
        "images": {"busybox": {"path": "busybox.tar.gz",
            "sha256": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}},
        "containers": {
            "app": {"image": "busybox", "command": ["/bin/sh", "-c", "echo hi"],
                    "env": {"NAME": "app"}, "user": "1000"},
            "side": {"image": "./extra.tar", "command": ["/bin/true"], "workdir": "/tmp",
                     "mounts": [{"source": ".", "target": "/src", "readonly": true},
                                {"type": "tmpfs", "target": "/scratch", "size": "1MiB"}]}
        }
    }"#;

    #[test]
    fn check_sample_pod_prints_evaluated_json() {
        let dir = TestDir::new();
        dir.file("busybox.tar.gz", "");
        dir.file("extra.tar", "");
        let path = dir.file("demo.pod.json", SAMPLE);
        let out = check(&path).unwrap();
        let d = dir.0.display();
        let expected = format!(
            r#"{{
  "name": "demo",
  "images": {{
    "./extra.tar": {{
      "path": "{d}/extra.tar",
      "sha256": null
    }},
    "busybox": {{
      "path": "{d}/busybox.tar.gz",
      "sha256": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    }}
  }},
  "containers": {{
    "app": {{
      "image": "busybox",
      "command": [
        "/bin/sh",
        "-c",
        "echo hi"
      ],
      "env": {{
        "NAME": "app"
      }},
      "workdir": "/",
      "user": {{
        "uid": 1000,
        "gid": 0
      }},
      "init": true,
      "mounts": [],
      "after": [],
      "background": false,
      "stdin": false,
      "tty": false
    }},
    "side": {{
      "image": "./extra.tar",
      "command": [
        "/bin/true"
      ],
      "env": {{}},
      "workdir": "/tmp",
      "user": {{
        "uid": 0,
        "gid": 0
      }},
      "init": true,
      "mounts": [
        {{
          "type": "bind",
          "source": "{d}",
          "target": "/src",
          "readonly": true
        }},
        {{
          "type": "tmpfs",
          "target": "/scratch",
          "size": 1048576
        }}
      ],
      "after": [],
      "background": false,
      "stdin": false,
      "tty": false
    }}
  }},
  "platform": "auto",
  "resources": {{
    "memory": 536870912,
    "cpus": null
  }},
  "volumes": {{}},
  "pid": "container"
}}"#
        );
        assert_eq!(out, expected);
    }

    #[test]
    fn check_invalid_pod_reports_json_path() {
        let dir = TestDir::new();
        let path = dir.file(
            "pod.json",
            r#"{"containers": {"app": {"image": "x.tar.gz", "command": ["a"]}}}"#,
        );
        let err = check(&path).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.ends_with(r#"pod.json: containers.app.image: "x.tar.gz" is neither an image name nor an existing file"#),
            "{msg}"
        );
    }

    #[test]
    fn check_output_parses_back_as_json() {
        let dir = TestDir::new();
        dir.file("busybox.tar.gz", "");
        dir.file("extra.tar", "");
        let out = check(&dir.file("x.json", SAMPLE)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["containers"]["app"]["env"]["NAME"], "app");
    }
}
