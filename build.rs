//! Builds the mini-init (init/init.c, freestanding C) that is embedded in
//! the sandboxd binary and runs as PID 1 of each container.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=init/init.c");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("sandboxd-init");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args([
            "-static",
            "-nostdlib",
            "-ffreestanding",
            "-fno-builtin",
            "-fno-stack-protector",
            "-fno-pie",
            "-no-pie",
            "-fno-asynchronous-unwind-tables",
            "-Os",
            "-Wall",
            "-Werror",
            "-s",
            "-Wl,--build-id=none",
            "-o",
        ])
        .arg(&out)
        .arg("init/init.c")
        .status()
        .unwrap_or_else(|e| panic!("running {cc} to build init/init.c: {e} (install gcc)"));
    assert!(status.success(), "building init/init.c failed");
}
