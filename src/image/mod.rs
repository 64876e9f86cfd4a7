//! Image bundles and the content-addressed store. (Skeleton: to be written.)
