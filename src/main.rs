//! Role dispatch: the one sandboxd binary re-executes itself with a different
//! argv[0] for each role.

fn main() {
    let argv0 = std::env::args_os().next().unwrap_or_default();
    let role = std::path::Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let code = match role.as_str() {
        sandboxd::sandbox::GOFER_ROLE => sandboxd::sandbox::gofer_main(),
        sandboxd::sandbox::SANDBOX_ROLE => sandboxd::sandbox::sandbox_main(),
        _ => sandboxd::cli::main(),
    };
    std::process::exit(code);
}
