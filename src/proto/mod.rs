//! The gofer wire protocol. (Skeleton: to be written.)
