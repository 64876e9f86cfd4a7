//! A minimal sysfs, mounted read-only on /sys: what programs read to
//! count CPUs (glibc's get_nprocs and get_nprocs_conf, and through them
//! sysconf, python's os.cpu_count, nproc --all):
//! /sys/devices/system/cpu/{online,possible,present} and one cpuN
//! directory per CPU the guest is given (the kernel's `cpus`, which
//! sched_getaffinity and /proc/cpuinfo show too).

use std::sync::Arc;

use super::dev::Synth;
use super::gofer::Dirent;
use super::node::Node;
use crate::abi::types::{dtype_of_mode, Stat, S_IFDIR, S_IFREG};
use crate::abi::{Errno, SysResult};

/// statfs f_type of sysfs.
pub const SYSFS_MAGIC: u64 = 0x6265_6572;

/// A file or directory of /sys, with the number of CPUs it shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SysNode {
    pub cpus: u16,
    pub what: What,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum What {
    Root,
    Devices,
    System,
    CpuDir,
    /// /sys/devices/system/cpu/cpuN.
    Cpu(u16),
    /// The CPU lists of /sys/devices/system/cpu.
    Online,
    Possible,
    Present,
    /// /sys/devices/system/cpu/cpuN/online (N > 0, as on x86).
    CpuOnline(u16),
}

impl SysNode {
    /// The root of a sysfs showing `cpus` CPUs.
    pub fn root(cpus: usize) -> SysNode {
        SysNode {
            cpus: cpus.clamp(1, u16::MAX as usize) as u16,
            what: What::Root,
        }
    }

    fn with(self, what: What) -> SysNode {
        SysNode { what, ..self }
    }

    /// The entries of a directory: (name, node).
    fn entries(self) -> Vec<(String, SysNode)> {
        let named = |list: &[(&str, What)]| {
            list.iter()
                .map(|(n, w)| (n.to_string(), self.with(*w)))
                .collect::<Vec<_>>()
        };
        match self.what {
            What::Root => named(&[("devices", What::Devices)]),
            What::Devices => named(&[("system", What::System)]),
            What::System => named(&[("cpu", What::CpuDir)]),
            What::CpuDir => {
                let mut out: Vec<_> = (0..self.cpus)
                    .map(|i| (format!("cpu{i}"), self.with(What::Cpu(i))))
                    .collect();
                out.extend(named(&[
                    ("online", What::Online),
                    ("possible", What::Possible),
                    ("present", What::Present),
                ]));
                out
            }
            What::Cpu(i) if i > 0 => vec![("online".into(), self.with(What::CpuOnline(i)))],
            _ => vec![],
        }
    }

    pub fn mode(self) -> u32 {
        match self.what {
            What::Online | What::Possible | What::Present | What::CpuOnline(_) => S_IFREG | 0o444,
            _ => S_IFDIR | 0o755,
        }
    }

    /// The bytes of a file.
    pub fn contents(self) -> Option<Vec<u8>> {
        let list = match self.cpus {
            1 => "0".to_string(),
            n => format!("0-{}", n - 1),
        };
        match self.what {
            What::Online | What::Possible | What::Present => Some(format!("{list}\n").into_bytes()),
            What::CpuOnline(_) => Some(b"1\n".to_vec()),
            _ => None,
        }
    }

    fn stat(self, ino: u64) -> Stat {
        let file = self.mode() & S_IFDIR != S_IFDIR;
        Stat {
            ino,
            mode: self.mode(),
            nlink: if file { 1 } else { 2 },
            size: if file { 4096 } else { 0 },
            blksize: 4096,
            ..Default::default()
        }
    }
}

/// The child `name` of /sys directory `dir` (cached: /sys never changes).
pub fn lookup(dir: &Arc<Node>, s: SysNode, name: &[u8]) -> SysResult<Arc<Node>> {
    if let Some(cached) = dir.cached(name) {
        return cached.ok_or(Errno::ENOENT);
    }
    let entries = s.entries();
    let (i, (_, found)) = entries
        .iter()
        .enumerate()
        .find(|(_, (n, _))| n.as_bytes() == name)
        .ok_or(Errno::ENOENT)?;
    let st = found.stat(dir.stat.ino * 256 + i as u64 + 1);
    let node = Node::new_synth(name, dir, Synth::Sys(*found), st, dir.mount.clone());
    dir.cache(name, Some(node)).ok_or(Errno::ENOENT)
}

/// The entries of /sys directory `s`.
pub fn readdir(dir: &Node, s: SysNode) -> Vec<Dirent> {
    s.entries()
        .into_iter()
        .enumerate()
        .map(|(i, (n, q))| {
            (
                dir.stat.ino * 256 + i as u64 + 1,
                dtype_of_mode(q.mode()),
                n.into_bytes(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysfs_cpu_lists_follow_the_cpu_count() {
        let root = SysNode::root(4);
        assert_eq!(root.with(What::Online).contents().unwrap(), b"0-3\n");
        assert_eq!(
            SysNode::root(1).with(What::Present).contents().unwrap(),
            b"0\n"
        );
        let names: Vec<String> = root
            .with(What::CpuDir)
            .entries()
            .into_iter()
            .map(|e| e.0)
            .collect();
        assert_eq!(
            names,
            ["cpu0", "cpu1", "cpu2", "cpu3", "online", "possible", "present"]
        );
        assert!(root.with(What::Cpu(0)).entries().is_empty());
    }
}
