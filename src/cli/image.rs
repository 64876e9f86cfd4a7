//! `sandboxd image`: the content-addressed image store: list its entries,
//! import a bundle ahead of time (for offline hosts), remove an entry.

use std::path::PathBuf;

use argh::FromArgs;

use crate::image::Store;
use crate::pod::Image;

/// Manage the image store: `ls`, `import BUNDLE`, `rm DIGEST`.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "image", help_triggers("-h", "--help", "help"))]
pub struct ImageCmd {
    /// directory of the image store (default: $SANDBOXD_STORE, else
    /// /var/lib/sandboxd/store as root, else ~/.local/share/sandboxd/store)
    #[argh(option, arg_name = "DIR")]
    store: Option<PathBuf>,
    #[argh(subcommand)]
    action: Action,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
enum Action {
    Ls(Ls),
    Import(Import),
    Rm(Rm),
}

/// List the store's entries: digest, bundle size, format, source.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "ls")]
struct Ls {}

/// Unpack a bundle (.tar, .tar.gz) into the store now; prints its digest.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "import")]
struct Import {
    /// the bundle file
    #[argh(positional, arg_name = "BUNDLE")]
    bundle: PathBuf,
    /// the sha256 the bundle must have
    #[argh(option)]
    sha256: Option<String>,
}

/// Remove an entry by its digest.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "rm")]
struct Rm {
    /// the entry's sha256 digest
    #[argh(positional, arg_name = "DIGEST")]
    digest: String,
}

impl ImageCmd {
    pub(super) fn execute(self) -> i32 {
        super::logger::init("sandboxd", None);
        let store = Store::new(self.store.unwrap_or_else(Store::default_root));
        match self.action {
            Action::Ls(_) => match store.list() {
                Ok(entries) => {
                    for e in entries {
                        println!(
                            "{}  {:>12}  {:<9} {}",
                            e.digest,
                            e.size,
                            e.format,
                            e.source.display()
                        );
                    }
                    0
                }
                Err(e) => super::fail(&e),
            },
            Action::Import(i) => {
                let path = match std::path::absolute(&i.bundle) {
                    Ok(p) => p,
                    Err(e) => return super::fail(&e),
                };
                let image = Image {
                    path,
                    sha256: i.sha256.map(|s| s.to_ascii_lowercase()),
                };
                match store.prepare(&image) {
                    Ok(rootfs) => {
                        let digest = rootfs
                            .parent()
                            .and_then(|p| p.file_name())
                            .map(|d| d.to_string_lossy().into_owned());
                        println!("{}", digest.unwrap_or_default());
                        0
                    }
                    Err(e) => super::fail(&e),
                }
            }
            Action::Rm(r) => match store.remove(&r.digest) {
                Ok(()) => 0,
                Err(e) => super::fail(&e),
            },
        }
    }
}
