//! The KVM platform. (Skeleton: to be written.)

use std::os::fd::OwnedFd;
use std::sync::Arc;

use super::{AddressSpace, Context, Platform, PlatformError};
use crate::sentry::mm::memory::GuestMemory;

/// One VM per sandbox over the guest memory memfd.
pub struct KvmPlatform {
    _memory: Arc<GuestMemory>,
}

impl KvmPlatform {
    /// Creates the VM over `memory`; `kvm` is an open `/dev/kvm`.
    pub fn new(memory: Arc<GuestMemory>, kvm: OwnedFd) -> Result<KvmPlatform, PlatformError> {
        let _ = kvm;
        Ok(KvmPlatform { _memory: memory })
    }
}

impl Platform for KvmPlatform {
    fn name(&self) -> &'static str {
        "kvm"
    }

    fn new_address_space(&self) -> Result<Box<dyn AddressSpace>, PlatformError> {
        todo!("kvm address space")
    }

    fn new_context(&self) -> Result<Box<dyn Context>, PlatformError> {
        todo!("kvm context")
    }
}
