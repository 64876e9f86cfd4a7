//! Descriptors opened with O_PATH: they name a dentry (for *at calls,
//! fstat, /proc/self/fd links) but cannot be read or written.

use std::sync::Arc;

use super::file::FileOps;
use super::node::Node;
use crate::abi::types::Stat;
use crate::abi::{Errno, SysResult};

/// An O_PATH file description.
pub struct PathFile {
    node: Arc<Node>,
}

impl PathFile {
    pub fn new(node: Arc<Node>) -> Arc<PathFile> {
        Arc::new(PathFile { node })
    }
}

impl FileOps for PathFile {
    fn read(&self, _buf: &mut [u8], _off: u64) -> SysResult<usize> {
        Err(Errno::EBADF)
    }

    fn write(&self, _buf: &[u8], _off: u64) -> SysResult<usize> {
        Err(Errno::EBADF)
    }

    fn stat(&self) -> SysResult<Stat> {
        Ok(self.node.current_stat())
    }

    fn entries(&self) -> SysResult<super::file::Entries> {
        Err(Errno::EBADF)
    }

    fn truncate(&self, _len: u64) -> SysResult<()> {
        Err(Errno::EBADF)
    }

    fn node(&self) -> Option<&Arc<Node>> {
        Some(&self.node)
    }
}
