//! The gofer: file server and its client. (Skeleton: to be written.)
