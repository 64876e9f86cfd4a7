//! The command line of the launcher role: `sandboxd [run] [-d] POD.json`,
//! `sandboxd check POD.json`, `sandboxd image ...`, `sandboxd platforms`,
//! `sandboxd version`, and the commands that drive pods recorded in the
//! state root: `list`, `ps`, `exec`, `kill`, `pause`, `resume`, `wait`,
//! `logs`, `stats`, `events`, `delete`.
//!
//! argh parses the arguments; argh has no default subcommand, so
//! [`rewrite_args`] inserts `run` when the first argument that is not a flag
//! is not a command name. Parsing never exits the process by itself: usage
//! errors exit 125 like every other failure of sandboxd, `--help` exits 0.
#![forbid(unsafe_code)]

mod check;
mod delete;
mod exec;
mod image;
mod kill;
mod list;
pub mod logger;
mod logs;
mod pause;
mod platforms;
mod pods;
mod ps;
mod run;
mod stats;
mod version;
mod wait;

use argh::FromArgs;

pub use check::render_pod;

/// Exit code of sandboxd's own failures (bad arguments, bad pod file, ...).
const FAILED: i32 = 125;

/// Run Linux programs from tar image bundles in a gVisor-class sandbox: a
/// user-space kernel implements their system calls, which never reach the
/// host kernel.
#[derive(FromArgs, Debug)]
#[argh(
    help_triggers("-h", "--help", "help"),
    note = "`{command_name} POD.json` is short for `{command_name} run POD.json`.",
    note = "SANDBOXD_LOG=off|error|warn|info|debug|trace sets the log level (default:",
    note = "warn on stderr, debug with `run --debug-log DIR`).",
    note = "The exit status is that of the pod's containers (the first non-zero one,",
    note = "else 0; 128+N for a container killed by signal N), or one of these:",
    error_code(
        125,
        "sandboxd itself failed (bad arguments, pod file or image; sandbox set-up)"
    ),
    error_code(126, "a container's command cannot be run"),
    error_code(127, "a container's command was not found")
)]
struct Sandboxd {
    #[argh(subcommand)]
    command: Command,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
enum Command {
    Run(run::RunCmd),
    List(list::ListCmd),
    Ps(ps::PsCmd),
    Exec(exec::ExecCmd),
    Kill(kill::KillCmd),
    Pause(pause::PauseCmd),
    Resume(pause::ResumeCmd),
    Wait(wait::WaitCmd),
    Logs(logs::LogsCmd),
    Stats(stats::StatsCmd),
    Events(stats::EventsCmd),
    Delete(delete::DeleteCmd),
    Check(check::CheckCmd),
    Image(image::ImageCmd),
    Platforms(platforms::PlatformsCmd),
    Version(version::VersionCmd),
}

/// Entry of the CLI role; returns the process exit code.
pub fn main() -> i32 {
    let mut args = Vec::new();
    for arg in std::env::args_os().skip(1) {
        match arg.into_string() {
            Ok(a) => args.push(a),
            Err(a) => {
                eprintln!("sandboxd: argument is not valid UTF-8: {a:?}");
                return FAILED;
            }
        }
    }
    dispatch("sandboxd", &args)
}

/// Parses `args` (without argv[0]) and runs the command; returns the exit
/// code.
fn dispatch(command_name: &str, args: &[String]) -> i32 {
    let mut args = rewrite_args(args);
    if args.first().is_some_and(|a| a == "exec") {
        args = exec::mark_dashes(&args);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match Sandboxd::from_args(&[command_name], &args) {
        Ok(cli) => match cli.command {
            Command::Run(cmd) => cmd.execute(),
            Command::List(cmd) => cmd.execute(),
            Command::Ps(cmd) => cmd.execute(),
            Command::Exec(cmd) => cmd.execute(),
            Command::Kill(cmd) => cmd.execute(),
            Command::Pause(cmd) => cmd.execute(),
            Command::Resume(cmd) => cmd.execute(),
            Command::Wait(cmd) => cmd.execute(),
            Command::Logs(cmd) => cmd.execute(),
            Command::Stats(cmd) => cmd.execute(),
            Command::Events(cmd) => cmd.execute(),
            Command::Delete(cmd) => cmd.execute(),
            Command::Check(cmd) => cmd.execute(),
            Command::Image(cmd) => cmd.execute(),
            Command::Platforms(cmd) => cmd.execute(),
            Command::Version(cmd) => cmd.execute(),
        },
        Err(early) if early.status.is_ok() => {
            print!("{}", help_text(&early.output));
            0
        }
        Err(early) => {
            let for_help = match args.first() {
                Some(cmd) if is_command_name(cmd) && *cmd != "help" => {
                    format!("{command_name} {cmd}")
                }
                _ => command_name.to_owned(),
            };
            eprintln!("{command_name}: {}", early.output.trim_end());
            eprintln!("Run '{for_help} --help' for more information.");
            FAILED
        }
    }
}

/// argh names its last help section "Error codes"; for sandboxd they are
/// exit statuses.
fn help_text(output: &str) -> String {
    let text = output.replace("Error codes:", "Exit status:");
    format!("{}\n", text.trim_end())
}

/// The command names `sandboxd` knows, plus argh's `help`.
fn is_command_name(arg: &str) -> bool {
    use argh::SubCommands;
    arg == "help" || Command::COMMANDS.iter().any(|c| c.name == arg)
}

/// Inserts `run` in front of `args` unless the first argument that is not a
/// flag (nor the value of one of `run`'s options) names a command, or the
/// arguments only ask for help.
pub fn rewrite_args(args: &[String]) -> Vec<String> {
    let mut i = 0;
    let mut only_help = true;
    while i < args.len() {
        let arg = args[i].as_str();
        if arg == "--" {
            only_help = false;
            break;
        }
        if !arg.starts_with('-') || arg == "-" {
            if is_command_name(arg) {
                return args.to_vec();
            }
            only_help = false;
            break;
        }
        only_help &= matches!(arg, "--help" | "-h");
        i += if run::takes_value(arg) { 2 } else { 1 };
    }
    if only_help {
        return args.to_vec();
    }
    let mut out = Vec::with_capacity(args.len() + 1);
    out.push("run".to_owned());
    out.extend_from_slice(args);
    out
}

/// Prints `err` and its chain of sources as one line on stderr; returns the
/// exit code of sandboxd's own failures.
pub(crate) fn fail(err: &(dyn std::error::Error + 'static)) -> i32 {
    eprintln!("sandboxd: {}", report(err));
    FAILED
}

/// `err` and its sources joined with ": ", as one line. An OS error is
/// shown by its description only ("No such file or directory", without
/// "(os error 2)").
pub fn report(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = describe(err);
    let mut source = err.source();
    while let Some(e) = source {
        line.push_str(": ");
        line.push_str(&describe(e));
        source = e.source();
    }
    line
}

fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let os_code = err
        .downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::raw_os_error);
    match os_code {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_owned(),
        None => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    fn rewritten(args: &[&str]) -> Vec<String> {
        rewrite_args(&strings(args))
    }

    #[test]
    fn rewrite_args_bare_pod_gets_run() {
        assert_eq!(rewritten(&["pod.json"]), ["run", "pod.json"]);
    }

    #[test]
    fn rewrite_args_leading_run_flags_get_run() {
        assert_eq!(
            rewritten(&["--strace", "pod.json"]),
            ["run", "--strace", "pod.json"]
        );
    }

    #[test]
    fn rewrite_args_option_value_named_like_command_is_skipped() {
        assert_eq!(
            rewritten(&["--debug-log", "check", "pod.json"]),
            ["run", "--debug-log", "check", "pod.json"]
        );
    }

    #[test]
    fn rewrite_args_known_commands_are_kept() {
        for args in [
            &["run", "p.json"][..],
            &["check", "p.json"],
            &["version"],
            &["help"],
        ] {
            assert_eq!(rewritten(args), args);
        }
    }

    #[test]
    fn rewrite_args_pod_named_like_file_in_check_dir_gets_run() {
        assert_eq!(rewritten(&["check/pod.json"]), ["run", "check/pod.json"]);
    }

    #[test]
    fn rewrite_args_help_alone_is_kept() {
        assert_eq!(rewritten(&["--help"]), ["--help"]);
        assert!(rewritten(&[]).is_empty());
    }

    #[test]
    fn rewrite_args_help_after_pod_goes_to_run() {
        assert_eq!(
            rewritten(&["pod.json", "--help"]),
            ["run", "pod.json", "--help"]
        );
    }

    #[test]
    fn rewrite_args_double_dash_gets_run() {
        assert_eq!(rewritten(&["--", "check"]), ["run", "--", "check"]);
    }

    #[test]
    fn parse_run_shorthand_reads_all_options() {
        let args = rewritten(&[
            "--strace",
            "--debug-log",
            "/tmp/l",
            "--platform",
            "kvm",
            "--store",
            "/s",
            "p.json",
        ]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let cli = Sandboxd::from_args(&["sandboxd"], &args).unwrap();
        let Command::Run(run) = cli.command else {
            panic!("not run: {cli:?}");
        };
        let opts = run.options();
        assert!(opts.strace);
        assert_eq!(
            opts.debug_log.as_deref(),
            Some(std::path::Path::new("/tmp/l"))
        );
        assert_eq!(opts.platform.as_deref(), Some("kvm"));
        assert_eq!(opts.store.as_deref(), Some(std::path::Path::new("/s")));
    }

    #[test]
    fn parse_bad_platform_is_usage_error() {
        let args = ["run", "--platform", "qemu", "p.json"];
        let err = Sandboxd::from_args(&["sandboxd"], &args).unwrap_err();
        assert!(err.status.is_err());
        assert!(err.output.contains("qemu"), "{}", err.output);
    }

    #[test]
    fn dispatch_usage_error_exits_125() {
        assert_eq!(
            dispatch("sandboxd", &strings(&["run", "--nope", "p.json"])),
            125
        );
    }

    #[test]
    fn dispatch_missing_pod_file_exits_125() {
        let code = dispatch("sandboxd", &strings(&["check", "/nonexistent/p.json"]));
        assert_eq!(code, 125);
    }

    #[test]
    fn help_text_names_exit_status_section() {
        let args = ["--help"];
        let help = Sandboxd::from_args(&["sandboxd"], &args).unwrap_err();
        let text = help_text(&help.output);
        assert!(
            text.contains("Exit status:\n  125 sandboxd itself failed"),
            "{text}"
        );
        assert!(!text.contains("Error codes"));
    }

    #[test]
    fn dispatch_version_exits_0() {
        assert_eq!(dispatch("sandboxd", &strings(&["version"])), 0);
    }

    #[test]
    fn report_bare_io_error_shows_description() {
        let err = std::io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(report(&err), "Permission denied");
    }

    #[test]
    fn report_os_error_shows_description_only() {
        let dir = crate::pod::TestDir::new();
        let err = crate::pod::load(&dir.0.join("pod.json")).unwrap_err();
        let line = report(&err);
        assert!(
            line.ends_with("pod.json: cannot read: No such file or directory"),
            "{line}"
        );
    }
}
