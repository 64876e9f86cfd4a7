//! `sandboxd version`.

use argh::FromArgs;

/// Print the version of sandboxd.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "version", help_triggers("-h", "--help", "help"))]
pub struct VersionCmd {}

/// "sandboxd 0.1.0".
fn version_line() -> String {
    format!("sandboxd {}", env!("CARGO_PKG_VERSION"))
}

impl VersionCmd {
    pub(super) fn execute(self) -> i32 {
        println!("{}", version_line());
        0
    }
}
