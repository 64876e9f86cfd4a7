//! Memory manager tests over a recording fake address space.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::*;
use crate::sentry::platform::PlatformError;

/// Records what the memory manager mapped: page -> (frame, prot).
#[derive(Default)]
struct FakeSpace {
    pages: Mutex<BTreeMap<u64, (u64, Prot)>>,
}

impl FakeSpace {
    fn at(&self, addr: u64) -> Option<(u64, Prot)> {
        self.pages.lock().unwrap().get(&addr).copied()
    }
}

impl AddressSpace for FakeSpace {
    fn map(&self, addr: u64, len: u64, offset: u64, prot: Prot) -> Result<(), PlatformError> {
        let mut pages = self.pages.lock().unwrap();
        for i in 0..len / PAGE_SIZE {
            pages.insert(addr + i * PAGE_SIZE, (offset + i * PAGE_SIZE, prot));
        }
        Ok(())
    }

    fn unmap(&self, addr: u64, len: u64) -> Result<(), PlatformError> {
        let mut pages = self.pages.lock().unwrap();
        pages.retain(|&a, _| a < addr || a >= addr + len);
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

const RW: Prot = Prot {
    read: true,
    write: true,
    exec: false,
};
const A: u64 = 0x10_0000;

fn memory() -> Arc<GuestMemory> {
    Arc::new(GuestMemory::new(256 * PAGE_SIZE, 256 * PAGE_SIZE).unwrap())
}

fn manager(mem: &Arc<GuestMemory>) -> (MemoryManager, Arc<FakeSpace>) {
    let space = Arc::new(FakeSpace::default());
    (MemoryManager::new(mem.clone(), space.clone()), space)
}

/// A manager with `pages` pages of shared anonymous memory at A.
fn with_shared(mem: &Arc<GuestMemory>, pages: u64) -> (MemoryManager, Arc<FakeSpace>) {
    let (mut mm, space) = manager(mem);
    let object = SharedObject::new(mem.clone(), pages * PAGE_SIZE);
    let backing = Backing::Shared { object, offset: 0 };
    mm.map(A, pages * PAGE_SIZE, RW, backing).unwrap();
    (mm, space)
}

fn child_of(mm: &mut MemoryManager) -> (MemoryManager, Arc<FakeSpace>) {
    let space = Arc::new(FakeSpace::default());
    let snap = mm.fork().unwrap();
    (
        MemoryManager::from_snapshot(space.clone(), snap).unwrap(),
        space,
    )
}

fn read_u64(mm: &mut MemoryManager, addr: u64) -> u64 {
    mm.read_u64(addr).unwrap()
}

#[test]
fn shared_anon_write_by_forked_child_is_seen_by_parent() {
    let mem = memory();
    let (mut parent, _) = with_shared(&mem, 2);
    parent.write_u64(A, 1).unwrap();
    let (mut child, _) = child_of(&mut parent);
    child.write_u64(A, 2).unwrap();
    child.write_u64(A + PAGE_SIZE, 3).unwrap();
    assert_eq!(read_u64(&mut parent, A), 2);
    assert_eq!(read_u64(&mut parent, A + PAGE_SIZE), 3);
}

#[test]
fn shared_page_stays_writable_after_fork() {
    let mem = memory();
    let (mut parent, space) = with_shared(&mem, 1);
    parent.write_u64(A, 1).unwrap();
    let (_child, child_space) = child_of(&mut parent);
    assert_eq!(space.at(A).map(|p| p.1), Some(RW));
    assert_eq!(child_space.at(A), space.at(A));
}

#[test]
fn private_anon_after_fork_is_still_copy_on_write() {
    let mem = memory();
    let (mut parent, _) = manager(&mem);
    parent.map(A, PAGE_SIZE, RW, Backing::Anon).unwrap();
    parent.write_u64(A, 1).unwrap();
    let (mut child, _) = child_of(&mut parent);
    child.write_u64(A, 2).unwrap();
    assert_eq!(read_u64(&mut parent, A), 1);
}

#[test]
fn shared_munmap_of_the_middle_keeps_the_rest_and_the_data() {
    let mem = memory();
    let (mut parent, _) = with_shared(&mem, 3);
    let (mut child, _) = child_of(&mut parent);
    for i in 0..3 {
        parent.write_u64(A + i * PAGE_SIZE, 10 + i).unwrap();
    }
    parent.unmap(A + PAGE_SIZE, PAGE_SIZE).unwrap();
    assert_eq!(parent.read_u64(A + PAGE_SIZE), Err(Errno::EFAULT));
    assert_eq!(read_u64(&mut parent, A + 2 * PAGE_SIZE), 12);
    assert_eq!(read_u64(&mut child, A + PAGE_SIZE), 11);
}

#[test]
fn shared_dontneed_keeps_the_data() {
    let mem = memory();
    let (mut mm, space) = with_shared(&mem, 1);
    mm.write_u64(A, 42).unwrap();
    mm.discard(A, PAGE_SIZE);
    assert_eq!(space.at(A), None);
    assert!(mm.resident(A));
    assert_eq!(read_u64(&mut mm, A), 42);
}

#[test]
fn shared_madv_free_is_einval() {
    let mem = memory();
    let (mut mm, _) = with_shared(&mem, 1);
    assert_eq!(mm.free(A, PAGE_SIZE), Err(Errno::EINVAL));
}

#[test]
fn shared_fresh_pages_are_not_resident() {
    let mem = memory();
    let (mm, _) = with_shared(&mem, 1);
    assert!(!mm.resident(A));
}

#[test]
fn shared_fault_around_leaves_untouched_pages_alone() {
    let mem = memory();
    let (mut mm, _) = with_shared(&mem, 4);
    mm.write_u64(A + 2 * PAGE_SIZE, 1).unwrap();
    assert!(!mm.resident(A + PAGE_SIZE));
    assert_eq!(mem.used_bytes(), PAGE_SIZE);
}

#[test]
fn shared_mremap_move_keeps_the_data_and_the_sharing() {
    let mem = memory();
    let (mut parent, _) = with_shared(&mem, 2);
    let (mut child, _) = child_of(&mut parent);
    parent.write_u64(A + PAGE_SIZE, 7).unwrap();
    // Something right after blocks growth in place.
    parent
        .map(A + 2 * PAGE_SIZE, PAGE_SIZE, RW, Backing::Anon)
        .unwrap();
    let new = parent
        .remap(A, 2 * PAGE_SIZE, 4 * PAGE_SIZE, true, None)
        .unwrap();
    assert_ne!(new, A);
    assert_eq!(read_u64(&mut parent, new + PAGE_SIZE), 7);
    parent.write_u64(new, 8).unwrap();
    assert_eq!(read_u64(&mut child, A), 8);
}

#[test]
fn shared_anon_grown_past_its_object_faults_past_end() {
    let mem = memory();
    let (mut mm, _) = with_shared(&mem, 1);
    assert_eq!(mm.remap(A, PAGE_SIZE, 2 * PAGE_SIZE, false, None), Ok(A));
    assert_eq!(mm.fault(A + PAGE_SIZE, true, false, false), Err(PAST_END));
    assert_eq!(mm.read_u64(A + PAGE_SIZE), Err(Errno::EFAULT));
}

#[test]
fn shared_mremap_of_length_zero_maps_the_same_pages_again() {
    let mem = memory();
    let (mut mm, _) = with_shared(&mem, 1);
    let again = mm.remap(A, 0, PAGE_SIZE, true, None).unwrap();
    mm.write_u64(again, 5).unwrap();
    assert_eq!(read_u64(&mut mm, A), 5);
}

#[test]
fn private_mremap_of_length_zero_is_einval() {
    let mem = memory();
    let (mut mm, _) = manager(&mem);
    mm.map(A, PAGE_SIZE, RW, Backing::Anon).unwrap();
    assert_eq!(mm.remap(A, 0, PAGE_SIZE, true, None), Err(Errno::EINVAL));
}

#[test]
fn mprotect_write_on_a_read_only_shared_mapping_is_eacces() {
    let mem = memory();
    let (mut mm, _) = manager(&mem);
    let object = SharedObject::new(mem.clone(), PAGE_SIZE);
    let req = MapRequest {
        placement: Placement::Fixed(A),
        len: PAGE_SIZE,
        prot: Prot { write: false, ..RW },
        backing: Backing::Shared { object, offset: 0 },
        may_write: false,
        grows_down: false,
        name: None,
    };
    assert_eq!(mm.mmap(req), Ok(A));
    assert_eq!(mm.protect(A, PAGE_SIZE, RW), Err(Errno::EACCES));
}

#[test]
fn mmap_fixed_noreplace_over_a_mapping_is_eexist() {
    let mem = memory();
    let (mut mm, _) = manager(&mem);
    mm.map(A, PAGE_SIZE, RW, Backing::Anon).unwrap();
    let req = MapRequest {
        placement: Placement::FixedNoReplace(A),
        len: PAGE_SIZE,
        prot: RW,
        backing: Backing::Anon,
        may_write: true,
        grows_down: false,
        name: None,
    };
    assert_eq!(mm.mmap(req), Err(Errno::EEXIST));
}

#[test]
fn shrunk_object_pages_go_when_settled_and_fault_past_end() {
    let mem = memory();
    let (mut mm, space) = manager(&mem);
    let object = SharedObject::new(mem.clone(), 2 * PAGE_SIZE);
    let backing = Backing::Shared {
        object: object.clone(),
        offset: 0,
    };
    mm.map(A, 2 * PAGE_SIZE, RW, backing).unwrap();
    mm.write_u64(A + PAGE_SIZE, 1).unwrap();
    object.set_size(PAGE_SIZE).unwrap();
    mm.settle();
    assert_eq!(space.at(A + PAGE_SIZE), None);
    assert_eq!(mm.fault(A + PAGE_SIZE, false, false, false), Err(PAST_END));
}

#[test]
fn shared_word_is_the_same_in_every_mapping_of_the_object() {
    let mem = memory();
    let (mut parent, _) = with_shared(&mem, 2);
    let (mut child, _) = child_of(&mut parent);
    let moved = child
        .remap(A, 2 * PAGE_SIZE, 2 * PAGE_SIZE, true, Some(0x20_0000))
        .unwrap();
    let word = parent.shared_word(A + PAGE_SIZE + 8);
    assert!(word.is_some());
    assert_eq!(child.shared_word(moved + PAGE_SIZE + 8), word);
}

#[test]
fn private_word_has_no_shared_key() {
    let mem = memory();
    let (mut mm, _) = manager(&mem);
    mm.map(A, PAGE_SIZE, RW, Backing::Anon).unwrap();
    assert_eq!(mm.shared_word(A), None);
}

#[test]
fn msync_over_a_hole_is_enomem() {
    let mem = memory();
    let (mut mm, _) = with_shared(&mem, 3);
    mm.unmap(A + PAGE_SIZE, PAGE_SIZE).unwrap();
    assert_eq!(mm.sync(A, PAGE_SIZE), Ok(()));
    assert_eq!(mm.sync(A, 3 * PAGE_SIZE), Err(Errno::ENOMEM));
}

#[test]
fn shared_frames_are_freed_when_the_last_mapping_goes() {
    let mem = memory();
    let (mut parent, _) = with_shared(&mem, 2);
    parent.write_u64(A, 1).unwrap();
    let (mut child, _) = child_of(&mut parent);
    child.write_u64(A + PAGE_SIZE, 1).unwrap();
    drop(parent);
    assert!(mem.used_bytes() > 0);
    child.unmap(A, 2 * PAGE_SIZE).unwrap();
    assert_eq!(mem.used_bytes(), 0);
}

#[test]
fn fork_after_a_shrink_does_not_give_the_child_pages_past_the_end() {
    let mem = memory();
    let (mut parent, _) = manager(&mem);
    let object = SharedObject::new(mem.clone(), 2 * PAGE_SIZE);
    let backing = Backing::Shared {
        object: object.clone(),
        offset: 0,
    };
    parent.map(A, 2 * PAGE_SIZE, RW, backing).unwrap();
    parent.write_u64(A + PAGE_SIZE, 1).unwrap();
    let snap = parent.fork().unwrap();
    object.set_size(PAGE_SIZE).unwrap();
    let space = Arc::new(FakeSpace::default());
    let mut child = MemoryManager::from_snapshot(space.clone(), snap).unwrap();
    assert_eq!(space.at(A + PAGE_SIZE), None);
    assert_eq!(
        child.fault(A + PAGE_SIZE, false, false, false),
        Err(PAST_END)
    );
}

/// A host file holding `data` (removed from the directory at once), open
/// read-write.
fn host_file(data: &[u8]) -> Arc<std::os::fd::OwnedFd> {
    use std::io::Write;
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let path = std::env::temp_dir().join(format!("sandboxd-mm-{}-{n}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    f.write_all(data).unwrap();
    Arc::new(f.into())
}

/// What `with_host_file` makes.
struct HostMapping {
    mm: MemoryManager,
    space: Arc<FakeSpace>,
    fd: Arc<std::os::fd::OwnedFd>,
    object: Arc<SharedObject>,
}

/// A manager with a host file of `pages` pages of zeros, cached and
/// mapped shared (read-write) at A.
fn with_host_file(mem: &Arc<GuestMemory>, pages: u64) -> HostMapping {
    let fd = host_file(&vec![0u8; (pages * PAGE_SIZE) as usize]);
    let object = SharedObject::of_file(mem, pages * PAGE_SIZE, FileSource::host(fd.clone(), true));
    let (mut mm, space) = manager(mem);
    let backing = Backing::Shared {
        object: object.clone(),
        offset: 0,
    };
    mm.map(A, pages * PAGE_SIZE, RW, backing).unwrap();
    HostMapping {
        mm,
        space,
        fd,
        object,
    }
}

fn private_file(object: &Arc<SharedObject>) -> Backing {
    Backing::File {
        object: object.clone(),
        offset: 0,
        zero_from: None,
    }
}

#[test]
fn file_private_mappings_share_the_cached_frame_until_written() {
    let mem = memory();
    let object = SharedObject::of_file(
        &mem,
        PAGE_SIZE,
        FileSource::image(host_file(&[7u8; PAGE_SIZE as usize])),
    );
    let (mut a, sa) = manager(&mem);
    let (mut b, sb) = manager(&mem);
    a.map(A, PAGE_SIZE, RW, private_file(&object)).unwrap();
    b.map(A, PAGE_SIZE, RW, private_file(&object)).unwrap();
    assert_eq!(a.read_u64(A).unwrap(), 0x0707_0707_0707_0707);
    assert_eq!(b.read_u64(A).unwrap(), 0x0707_0707_0707_0707);
    assert_eq!(sa.at(A).unwrap().0, sb.at(A).unwrap().0);
    assert_eq!(mem.used_bytes(), PAGE_SIZE);

    a.write_u64(A, 1).unwrap();

    assert_ne!(sa.at(A).unwrap().0, sb.at(A).unwrap().0);
    assert_eq!(b.read_u64(A).unwrap(), 0x0707_0707_0707_0707);
    let mut back = [0u8; 8];
    object.read(0, &mut back);
    assert_eq!(back, [7u8; 8]);
}

#[test]
fn file_private_page_past_the_end_of_the_file_is_past_end() {
    let mem = memory();
    let object = SharedObject::of_file(&mem, 10, FileSource::image(host_file(&[1u8; 10])));
    let (mut mm, _) = manager(&mem);
    mm.map(A, 2 * PAGE_SIZE, RW, private_file(&object)).unwrap();
    assert_eq!(mm.read_u64(A + 8).unwrap() & 0xffff, 0x0101);
    assert_eq!(mm.read_u64(A + 16).unwrap(), 0);
    assert_eq!(mm.fault(A + PAGE_SIZE, false, false, false), Err(PAST_END));
}

#[test]
fn file_cache_pages_nobody_maps_are_reclaimed_at_the_limit() {
    let mem = Arc::new(GuestMemory::new(16 * PAGE_SIZE, 8 * PAGE_SIZE).unwrap());
    let object = SharedObject::of_file(
        &mem,
        6 * PAGE_SIZE,
        FileSource::image(host_file(&[3u8; 6 * PAGE_SIZE as usize])),
    );
    let (mut mm, _) = manager(&mem);
    mm.map(A, 6 * PAGE_SIZE, RW, private_file(&object)).unwrap();
    for i in 0..6 {
        mm.read_u64(A + i * PAGE_SIZE).unwrap();
    }
    // One page stays mapped: it must stay cached.
    mm.unmap(A + PAGE_SIZE, 5 * PAGE_SIZE).unwrap();
    assert_eq!(object.cached_pages(), 6);

    let frames: Vec<u64> = (0..7).map(|_| mem.alloc_frame().unwrap()).collect();

    assert_eq!(object.cached_pages(), 1);
    assert_eq!(mm.read_u64(A).unwrap(), 0x0303_0303_0303_0303);
    assert_eq!(mem.alloc_frame(), Err(Errno::ENOMEM));
    frames.into_iter().for_each(|f| mem.decref(f));
}

#[test]
fn file_shared_mapping_of_a_host_file_writes_back_on_msync_and_munmap() {
    let HostMapping { mut mm, fd, .. } = with_host_file(&memory(), 2);
    let host = |off: u64| {
        let mut b = [0u8; 8];
        nix::sys::uio::pread(fd.as_ref(), &mut b, off as i64).unwrap();
        u64::from_le_bytes(b)
    };

    mm.write_u64(A + 8, 42).unwrap();
    assert_eq!(host(8), 0);
    mm.sync(A, PAGE_SIZE).unwrap();
    assert_eq!(host(8), 42);

    mm.write_u64(A + PAGE_SIZE, 43).unwrap();
    mm.unmap(A, 2 * PAGE_SIZE).unwrap();
    assert_eq!(host(PAGE_SIZE), 43);
}

#[test]
fn file_cache_read_sees_dirty_pages_and_write_updates_cached_ones() {
    let HostMapping {
        mut mm, fd, object, ..
    } = with_host_file(&memory(), 1);
    mm.write_u64(A, 5).unwrap();
    let mut buf = [0u8; 8];
    object.overlay_dirty(0, &mut buf);
    assert_eq!(u64::from_le_bytes(buf), 5);

    let host = |b: &[u8]| Ok(nix::sys::uio::pwrite(fd.as_ref(), b, 16)?);
    assert_eq!(object.write_through(16, &9u64.to_le_bytes(), host), Ok(8));

    assert_eq!(mm.read_u64(A + 16).unwrap(), 9);
}

/// Maps `pages` pages of grows-down anonymous memory at `at`.
fn stack_at(mm: &mut MemoryManager, at: u64, pages: u64) {
    let req = MapRequest {
        placement: Placement::Fixed(at),
        len: pages * PAGE_SIZE,
        prot: RW,
        backing: Backing::Anon,
        may_write: true,
        grows_down: true,
        name: None,
    };
    mm.mmap(req).unwrap();
}

#[test]
fn grows_down_fault_below_grows_the_vma_to_that_page() {
    let mem = memory();
    let (mut mm, _) = manager(&mem);
    let top = A + 1024 * PAGE_SIZE;
    stack_at(&mut mm, top, 4);

    mm.write_u64(top - 10 * PAGE_SIZE + 8, 5).unwrap();

    assert_eq!(
        mm.vma_at(top - 10 * PAGE_SIZE).unwrap().0,
        top - 10 * PAGE_SIZE
    );
    assert_eq!(mm.read_u64(top - 10 * PAGE_SIZE + 8), Ok(5));
}

#[test]
fn grows_down_stops_at_the_stack_limit_and_the_guard_gap() {
    let mem = memory();
    let (mut mm, _) = manager(&mem);
    mm.map(A, PAGE_SIZE, RW, Backing::Anon).unwrap();
    let top = A + PAGE_SIZE + STACK_GUARD_GAP + 8 * PAGE_SIZE;
    stack_at(&mut mm, top, 4);
    mm.stack_limit = 8 * PAGE_SIZE;

    assert_eq!(
        mm.fault(top - 5 * PAGE_SIZE, true, false, false),
        Err(Errno::EFAULT)
    );
    assert!(mm.fault(top - 4 * PAGE_SIZE, true, false, false).is_ok());
    mm.stack_limit = u64::MAX;
    assert_eq!(
        mm.fault(top - 9 * PAGE_SIZE, true, false, false),
        Err(Errno::EFAULT)
    );
    assert!(mm.fault(top - 8 * PAGE_SIZE, true, false, false).is_ok());
}

#[test]
fn grows_down_guard_gap_is_left_free_by_mmap() {
    let mem = memory();
    let (mut mm, _) = manager(&mem);
    let top = mm.mmap_top - 4 * PAGE_SIZE;
    stack_at(&mut mm, top, 4);

    let at = mm.find_free(PAGE_SIZE).unwrap();

    assert!(at + PAGE_SIZE <= top - STACK_GUARD_GAP, "{at:#x}");
}

#[test]
fn file_shared_mapping_only_read_writes_nothing_back() {
    let HostMapping {
        mut mm, space, fd, ..
    } = with_host_file(&memory(), 1);

    assert_eq!(mm.read_u64(A), Ok(0));
    assert!(
        !space.at(A).unwrap().1.write,
        "a clean page is mapped read-only"
    );
    nix::sys::uio::pwrite(fd.as_ref(), b"host", 0).unwrap();
    mm.unmap(A, PAGE_SIZE).unwrap();

    let mut back = [0u8; 4];
    nix::sys::uio::pread(fd.as_ref(), &mut back, 0).unwrap();
    assert_eq!(&back, b"host");
}

#[test]
fn file_shared_mapping_first_write_makes_the_page_writable_and_dirty() {
    let HostMapping {
        mut mm, space, fd, ..
    } = with_host_file(&memory(), 1);
    mm.read_u64(A).unwrap();

    // A write fault on the read-only page, as a platform reports it.
    mm.fault(A, true, false, true).unwrap();

    assert!(space.at(A).unwrap().1.write);
    // Dirty: munmap writes the cached page over what the host put there.
    nix::sys::uio::pwrite(fd.as_ref(), b"host", 0).unwrap();
    mm.unmap(A, PAGE_SIZE).unwrap();
    let mut back = [1u8; 4];
    nix::sys::uio::pread(fd.as_ref(), &mut back, 0).unwrap();
    assert_eq!(back, [0u8; 4]);
}

#[test]
fn file_cache_read_reads_pages_nobody_touched_from_the_file() {
    let mem = memory();
    let object = SharedObject::of_file(&mem, 5000, FileSource::image(host_file(&[4u8; 5000])));
    let mut buf = [0u8; 10];

    assert_eq!(object.read(4095, &mut buf), 10);

    assert_eq!(buf, [4u8; 10]);
    assert_eq!(object.cached_pages(), 2);
}

#[test]
fn file_fault_maps_pages_the_cache_holds_far_around_but_reads_none() {
    let pages = 100;
    let mem = memory();
    let object = SharedObject::of_file(
        &mem,
        pages * PAGE_SIZE,
        FileSource::image(host_file(&vec![3u8; (pages * PAGE_SIZE) as usize])),
    );
    // Another process has read pages 60 and 90 (far beyond the fault-
    // around window of a fault at page 0), and its fault-around the
    // pages near them: the cache holds 56..76 and 86..100.
    let (mut other, _) = manager(&mem);
    other
        .map(A, pages * PAGE_SIZE, RW, private_file(&object))
        .unwrap();
    other.read_u64(A + 60 * PAGE_SIZE).unwrap();
    other.read_u64(A + 90 * PAGE_SIZE).unwrap();
    let cached = mem.used_bytes();

    let (mut mm, space) = manager(&mem);
    mm.map(A, pages * PAGE_SIZE, RW, private_file(&object))
        .unwrap();
    assert_eq!(mm.read_u64(A).unwrap(), 0x0303_0303_0303_0303);
    // Pages 60 and 90 came from the cache, read-only (copy-on-write)...
    for p in [60, 90] {
        let (frame, prot) = space.at(A + p * PAGE_SIZE).expect("mapped from the cache");
        assert!(!prot.write, "page {p} is copy-on-write");
        assert_eq!(mem.refcount(frame), 3, "the cache and both processes");
    }
    // ...and nothing the cache did not hold was read for them.
    assert!(space.at(A + 70 * PAGE_SIZE).is_some());
    assert!(space.at(A + 40 * PAGE_SIZE).is_none());
    let around = (FAULT_AROUND * PAGE_SIZE).min(pages * PAGE_SIZE);
    assert_eq!(mem.used_bytes(), cached + around);
    // A write still gets a private copy.
    mm.write_u64(A + 60 * PAGE_SIZE, 9).unwrap();
    assert_eq!(
        other.read_u64(A + 60 * PAGE_SIZE).unwrap(),
        0x0303_0303_0303_0303
    );
}
