//! Building the `SentrySpec` the sandbox role hands to the sentry, from the
//! evaluated pod and the run options.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::pod::{Container, Mount, Pod, Volume};
use crate::sentry::{ContainerSpec, MountKind, MountSpec, SentrySpec, VolumeSpec};

use super::RunOptions;

pub use crate::pod::DEFAULT_MEMORY;

/// The spec of `pod`; containers in the pod's (name) order, which is also
/// the order of the gofer sockets.
pub fn build(pod: &Pod, opts: &RunOptions, volumes: &VolumeDirs) -> SentrySpec {
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
            mounts: mounts(c, volumes),
            after: c.after.clone(),
            background: c.background,
            stdin: c.stdin,
            tty: c.tty,
        })
        .collect();
    SentrySpec {
        containers,
        platform: opts
            .platform
            .clone()
            .unwrap_or_else(|| pod.platform.clone()),
        strace: opts.strace,
        memory: pod.resources.memory.unwrap_or(DEFAULT_MEMORY),
        cpus: pod.resources.cpus.unwrap_or(0),
        hostname: pod.name.clone(),
        shared_pid: pod.pid == "pod",
        volumes: pod
            .volumes
            .iter()
            .filter_map(|(name, v)| match v {
                Volume::Tmpfs { size } => Some(VolumeSpec {
                    name: name.clone(),
                    size: *size,
                }),
                Volume::Bind { .. } => None,
            })
            .collect(),
    }
}

/// A host directory the container's gofer serves beside the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoferBind {
    /// The attach name: `bind0`, `bind1`, ... in the pod's mount order.
    pub aname: String,
    pub source: PathBuf,
    pub readonly: bool,
}

/// The host directories of a pod's `source` volumes (memory volumes are
/// the sentry's own: see `MountKind::Volume`).
#[derive(Default)]
pub struct VolumeDirs {
    dirs: BTreeMap<String, PathBuf>,
}

impl VolumeDirs {
    pub fn new(pod: &Pod) -> VolumeDirs {
        let dirs = pod
            .volumes
            .iter()
            .filter_map(|(name, vol)| match vol {
                Volume::Bind { source } => Some((name.clone(), source.clone())),
                Volume::Tmpfs { .. } => None,
            })
            .collect();
        VolumeDirs { dirs }
    }
}

/// The bind mounts of `c` (its host-directory volumes included), with the
/// attach names its gofer serves them under.
pub fn gofer_binds(c: &Container, volumes: &VolumeDirs) -> Vec<GoferBind> {
    let binds = c.mounts.iter().filter_map(|m| match m {
        Mount::Bind {
            source, readonly, ..
        } => Some((source, *readonly)),
        Mount::Volume { name, readonly, .. } => volumes.dirs.get(name).map(|d| (d, *readonly)),
        Mount::Tmpfs { .. } => None,
    });
    binds
        .enumerate()
        .map(|(i, (source, readonly))| GoferBind {
            aname: format!("bind{i}"),
            source: source.clone(),
            readonly,
        })
        .collect()
}

/// The sentry's view of `c`'s mounts, in pod order.
fn mounts(c: &Container, volumes: &VolumeDirs) -> Vec<MountSpec> {
    let mut binds = gofer_binds(c, volumes).into_iter();
    c.mounts
        .iter()
        .map(|m| {
            let kind = match m {
                Mount::Tmpfs { size, .. } => MountKind::Tmpfs { size: *size },
                Mount::Volume { name, readonly, .. } if !volumes.dirs.contains_key(name) => {
                    MountKind::Volume {
                        name: name.clone(),
                        readonly: *readonly,
                    }
                }
                Mount::Bind { .. } | Mount::Volume { .. } => {
                    let b = binds.next().expect("one gofer bind per bind mount");
                    MountKind::Bind {
                        aname: b.aname,
                        readonly: b.readonly,
                    }
                }
            };
            MountSpec {
                target: m.target().to_owned(),
                kind,
            }
        })
        .collect()
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
            mounts: vec![],
            after: vec![],
            background: false,
            stdin: true,
            tty: false,
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
            resources: Default::default(),
            volumes: Default::default(),
            pid: "container".into(),
        }
    }

    #[test]
    fn build_env_map_becomes_sorted_pairs_and_user_ids() {
        let spec = build(&pod(), &RunOptions::default(), &VolumeDirs::default());
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
        let spec = build(&pod(), &opts, &VolumeDirs::default());
        assert_eq!(spec.platform, "kvm");
        assert!(spec.strace);
    }

    #[test]
    fn build_mounts_keep_pod_order_and_number_binds() {
        let mut pod = pod();
        let bind = |s: &str, t: &str, ro| Mount::Bind {
            source: PathBuf::from(s),
            target: t.into(),
            readonly: ro,
        };
        let app = pod.containers.get_mut("app").unwrap();
        app.mounts = vec![
            bind("/h/a", "/a", true),
            Mount::Tmpfs {
                target: "/t".into(),
                size: 4096,
            },
            bind("/h/b", "/a/b", false),
        ];
        let spec = build(&pod, &RunOptions::default(), &VolumeDirs::default());
        let want = vec![
            MountSpec {
                target: "/a".into(),
                kind: MountKind::Bind {
                    aname: "bind0".into(),
                    readonly: true,
                },
            },
            MountSpec {
                target: "/t".into(),
                kind: MountKind::Tmpfs { size: 4096 },
            },
            MountSpec {
                target: "/a/b".into(),
                kind: MountKind::Bind {
                    aname: "bind1".into(),
                    readonly: false,
                },
            },
        ];
        assert_eq!(spec.containers[0].mounts, want);
        let binds = gofer_binds(&pod.containers["app"], &VolumeDirs::default());
        assert_eq!(binds[1].source, PathBuf::from("/h/b"));
        assert_eq!(binds[1].aname, "bind1");
    }
}
