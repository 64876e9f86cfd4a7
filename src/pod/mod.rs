//! The pod file. (Skeleton: to be written.)
