//! Building the `SentrySpec` the sandbox role hands to the sentry, from the
//! evaluated pod and the run options.
#![forbid(unsafe_code)]

use crate::pod::Pod;
use crate::sentry::{ContainerSpec, SentrySpec};

use super::RunOptions;

/// Guest memory limit while the pod file has no `resources.memory`.
pub const DEFAULT_MEMORY: u64 = 512 << 20;

/// The spec of `pod`; containers in the pod's (name) order, which is also
/// the order of the gofer sockets.
pub fn build(pod: &Pod, opts: &RunOptions) -> SentrySpec {
    let containers = pod
        .containers
        .iter()
        .map(|(name, c)| ContainerSpec {
            name: name.clone(),
            command: c.command.clone(),
            env: c.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            workdir: c.workdir.clone(),
            uid: c.user.uid,
            gid: c.user.gid,
            init: c.init,
            // The pod file has no mounts yet.
            mounts: Vec::new(),
        })
        .collect();
    SentrySpec {
        containers,
        platform: opts
            .platform
            .clone()
            .unwrap_or_else(|| pod.platform.clone()),
        strace: opts.strace,
        memory: DEFAULT_MEMORY,
        hostname: pod.name.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::{Container, Image, User};
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    fn pod() -> Pod {
        let app = Container {
            image: "busybox".into(),
            command: vec!["/bin/sh".into(), "-c".into(), "echo hi".into()],
            env: BTreeMap::from([("NAME".into(), "app".into()), ("A".into(), "1".into())]),
            workdir: "/".into(),
            user: User {
                uid: 1000,
                gid: 100,
            },
            init: true,
        };
        let image = Image {
            path: PathBuf::from("/x.tar"),
            sha256: None,
        };
        Pod {
            name: "demo".into(),
            dir: PathBuf::from("/"),
            images: BTreeMap::from([("busybox".into(), image)]),
            containers: BTreeMap::from([("app".into(), app)]),
            platform: "auto".into(),
        }
    }

    #[test]
    fn build_env_map_becomes_sorted_pairs_and_user_ids() {
        let spec = build(&pod(), &RunOptions::default());
        let c = &spec.containers[0];
        assert_eq!(c.name, "app");
        assert_eq!(c.env, vec!["A=1", "NAME=app"]);
        assert_eq!((c.uid, c.gid), (1000, 100));
        assert_eq!(spec.platform, "auto");
        assert_eq!(spec.hostname, "demo");
    }

    #[test]
    fn build_options_override_platform_and_strace() {
        let opts = RunOptions {
            platform: Some("kvm".into()),
            strace: true,
            ..Default::default()
        };
        let spec = build(&pod(), &opts);
        assert_eq!(spec.platform, "kvm");
        assert!(spec.strace);
    }
}
