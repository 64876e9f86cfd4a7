//! Image bundles and the content-addressed store.
//! (Skeleton: the interface is fixed; the body is to be written.)

use std::path::{Path, PathBuf};

use crate::pod::Image;

/// Failure to prepare an image; messages name the bundle file.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{0}")]
    Todo(String),
}

/// The content-addressed store of unpacked images.
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// The store at `root`.
    pub fn new(root: PathBuf) -> Store {
        Store { root }
    }

    /// `$SANDBOXD_STORE`, else `/var/lib/sandboxd/store` for root, else
    /// `$XDG_DATA_HOME/sandboxd/store` (`~/.local/share/sandboxd/store`).
    pub fn default_root() -> PathBuf {
        todo!()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Verifies `image` against its pin, unpacks it into the store unless it
    /// is there already, and returns the directory of its rootfs.
    pub fn prepare(&self, image: &Image) -> Result<PathBuf, ImageError> {
        let _ = image;
        todo!()
    }
}
