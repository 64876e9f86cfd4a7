//! Seccomp policies, one per role. (Skeleton: to be written.)
