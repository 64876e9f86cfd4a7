//! Builds the freestanding C that is embedded in the sandboxd binary: the
//! mini-init (init/init.c), PID 1 of each container, and the vDSO
//! (src/sentry/vdso/vdso.c), mapped into every guest process.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    build_init(&out.join("sandboxd-init"));
    build_vdso(&out.join("vdso.so"));
}

/// Runs the C compiler with `args`, naming `what` on failure.
fn cc(what: &str, args: &[&str], out: &Path) {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args(args)
        .arg("-o")
        .arg(out)
        .status()
        .unwrap_or_else(|e| panic!("running {cc} to build {what}: {e} (install gcc)"));
    assert!(status.success(), "building {what} failed");
}

fn build_init(out: &Path) {
    println!("cargo:rerun-if-changed=init/init.c");
    let args = [
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
        "init/init.c",
    ];
    cc("init/init.c", &args, out);
}

/// The vDSO: a shared object with no libc, no relocations and no writable
/// data, its symbols versioned LINUX_2.6 (as glibc looks them up), laid
/// out by vdso.lds so that the vvar page sits just below it.
fn build_vdso(out: &Path) {
    const DIR: &str = "src/sentry/vdso";
    for f in ["vdso.c", "vvar.h", "vdso.lds", "vdso.map"] {
        println!("cargo:rerun-if-changed={DIR}/{f}");
    }
    let args = [
        "-shared",
        "-nostdlib",
        "-fPIC",
        "-O2",
        "-Wall",
        "-Werror",
        "-ffreestanding",
        "-fno-builtin",
        "-fno-stack-protector",
        "-fno-common",
        "-fvisibility=hidden",
        "-Wl,-T,src/sentry/vdso/vdso.lds",
        "-Wl,--version-script=src/sentry/vdso/vdso.map",
        "-Wl,-soname=linux-vdso.so.1",
        "-Wl,--hash-style=both",
        "-Wl,--eh-frame-hdr",
        "-Wl,--no-undefined",
        "-Wl,-z,max-page-size=4096",
        "-Wl,--build-id=none",
        "src/sentry/vdso/vdso.c",
    ];
    cc("the vDSO (src/sentry/vdso/vdso.c)", &args, out);
}
