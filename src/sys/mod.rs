//! Thin safe wrappers over libc. (Skeleton: to be written.)
