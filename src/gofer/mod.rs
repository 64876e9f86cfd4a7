//! The gofer: file server and its client. (Temporary interface stand-in
//! until the real client lands.)
use std::os::fd::OwnedFd;

use crate::abi::types::Stat;
use crate::abi::SysResult;

pub type Fid = u32;

pub struct Dirent {
    pub ino: u64,
    pub kind: u8,
    pub name: Vec<u8>,
}

pub struct GoferClient;

impl GoferClient {
    pub fn new(_sock: OwnedFd) -> GoferClient {
        GoferClient
    }
    pub fn attach(&self) -> SysResult<(Fid, Stat)> {
        todo!()
    }
    pub fn walk(&self, _dir: Fid, _name: &[u8]) -> SysResult<(Fid, Stat)> {
        todo!()
    }
    pub fn readlink(&self, _fid: Fid) -> SysResult<Vec<u8>> {
        todo!()
    }
    pub fn open(&self, _fid: Fid, _flags: i32) -> SysResult<OwnedFd> {
        todo!()
    }
    pub fn readdir(&self, _fid: Fid) -> SysResult<Vec<Dirent>> {
        todo!()
    }
}
