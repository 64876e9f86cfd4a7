//! Binary layouts of Linux structures exchanged with the guest, encoded by
//! hand into little-endian byte arrays (never by transmuting host structs).

/// File metadata, as the sentry and the gofer exchange it and as `struct stat`
/// carries it to the guest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: i64,
    pub blksize: i64,
    pub blocks: i64,
    pub atime: (i64, i64),
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
}

impl Stat {
    /// The host's metadata as the gofer reports it and the guest sees it.
    pub fn from_host(st: &nix::sys::stat::FileStat) -> Stat {
        Stat {
            dev: st.st_dev,
            ino: st.st_ino,
            mode: st.st_mode,
            nlink: st.st_nlink,
            uid: st.st_uid,
            gid: st.st_gid,
            rdev: st.st_rdev,
            size: st.st_size,
            blksize: st.st_blksize,
            blocks: st.st_blocks,
            atime: (st.st_atime, st.st_atime_nsec),
            mtime: (st.st_mtime, st.st_mtime_nsec),
            ctime: (st.st_ctime, st.st_ctime_nsec),
        }
    }
}

/// File type bits of `st_mode`.
pub const S_IFMT: u32 = 0o170000;
pub const S_IFSOCK: u32 = 0o140000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFBLK: u32 = 0o060000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFCHR: u32 = 0o020000;
pub const S_IFIFO: u32 = 0o010000;

impl Stat {
    /// Size of x86-64 `struct stat`.
    pub const SIZE: usize = 144;

    pub fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }

    pub fn is_symlink(&self) -> bool {
        self.mode & S_IFMT == S_IFLNK
    }

    pub fn is_reg(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }

    /// The x86-64 `struct stat` bytes.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        let mut put = |off: usize, v: u64| b[off..off + 8].copy_from_slice(&v.to_le_bytes());
        put(0, self.dev);
        put(8, self.ino);
        put(16, self.nlink);
        put(24, self.mode as u64 | ((self.uid as u64) << 32));
        put(32, self.gid as u64);
        put(40, self.rdev);
        put(48, self.size as u64);
        put(56, self.blksize as u64);
        put(64, self.blocks as u64);
        put(72, self.atime.0 as u64);
        put(80, self.atime.1 as u64);
        put(88, self.mtime.0 as u64);
        put(96, self.mtime.1 as u64);
        put(104, self.ctime.0 as u64);
        put(112, self.ctime.1 as u64);
        b
    }
}

impl Stat {
    /// Size of `struct statx`.
    pub const STATX_SIZE: usize = 256;

    /// The `struct statx` bytes, with every basic field (STATX_BASIC_STATS).
    pub fn to_statx(&self) -> [u8; Self::STATX_SIZE] {
        let mut b = [0u8; Self::STATX_SIZE];
        let put32 = |b: &mut [u8; Self::STATX_SIZE], off: usize, v: u32| {
            b[off..off + 4].copy_from_slice(&v.to_le_bytes())
        };
        let put64 = |b: &mut [u8; Self::STATX_SIZE], off: usize, v: u64| {
            b[off..off + 8].copy_from_slice(&v.to_le_bytes())
        };
        put32(&mut b, 0, 0x7ff); // stx_mask: STATX_BASIC_STATS
        put32(&mut b, 4, self.blksize as u32);
        put32(&mut b, 16, self.nlink as u32);
        put32(&mut b, 20, self.uid);
        put32(&mut b, 24, self.gid);
        b[28..30].copy_from_slice(&(self.mode as u16).to_le_bytes());
        put64(&mut b, 32, self.ino);
        put64(&mut b, 40, self.size as u64);
        put64(&mut b, 48, self.blocks as u64);
        for (off, (sec, nsec)) in [(64, self.atime), (96, self.ctime), (112, self.mtime)] {
            put64(&mut b, off, sec as u64);
            put32(&mut b, off + 8, nsec as u32);
        }
        // The birth time (offset 80) is not known: its mask bit stays clear.
        put32(&mut b, 128, (self.rdev >> 8) as u32 & 0xfff);
        put32(&mut b, 132, (self.rdev & 0xff) as u32);
        put32(&mut b, 136, (self.dev >> 8) as u32 & 0xfff);
        put32(&mut b, 140, (self.dev & 0xff) as u32);
        b
    }
}

/// `d_type` values of `struct linux_dirent64`.
pub const DT_UNKNOWN: u8 = 0;
pub const DT_FIFO: u8 = 1;
pub const DT_CHR: u8 = 2;
pub const DT_DIR: u8 = 4;
pub const DT_BLK: u8 = 6;
pub const DT_REG: u8 = 8;
pub const DT_LNK: u8 = 10;
pub const DT_SOCK: u8 = 12;

/// The `d_type` for a `st_mode`.
pub fn dtype_of_mode(mode: u32) -> u8 {
    match mode & S_IFMT {
        S_IFIFO => DT_FIFO,
        S_IFCHR => DT_CHR,
        S_IFDIR => DT_DIR,
        S_IFBLK => DT_BLK,
        S_IFREG => DT_REG,
        S_IFLNK => DT_LNK,
        S_IFSOCK => DT_SOCK,
        _ => DT_UNKNOWN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_to_bytes_places_mode_and_size_like_glibc() {
        let st = Stat {
            mode: S_IFREG | 0o644,
            uid: 7,
            size: 42,
            ..Default::default()
        };
        let b = st.to_bytes();
        assert_eq!(
            u32::from_le_bytes(b[24..28].try_into().unwrap()),
            S_IFREG | 0o644
        );
        assert_eq!(u32::from_le_bytes(b[28..32].try_into().unwrap()), 7);
        assert_eq!(i64::from_le_bytes(b[48..56].try_into().unwrap()), 42);
    }
}
