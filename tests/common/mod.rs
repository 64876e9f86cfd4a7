//! The end-to-end fixture: writes a pod file, runs the real `sandboxd`
//! binary on it (real KVM or ptrace, real images), and returns what it
//! printed, like crosvm's `TestVm`.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long one pod may run before the test fails.
const TIMEOUT: Duration = Duration::from_secs(120);

/// What a run printed and how it ended.
#[derive(Debug)]
pub struct Out {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

/// A pod to run: one container named `app`.
pub struct TestPod {
    image: PathBuf,
    command: Vec<String>,
    env: Vec<(String, String)>,
    workdir: Option<String>,
    user: Option<String>,
    platform: Option<String>,
    args: Vec<String>,
    init: Option<bool>,
    resources: Option<String>,
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// images/out/NAME.tar.gz, which `images/NAME/build.sh` makes.
pub fn image(name: &str) -> PathBuf {
    let p = repo().join("images/out").join(format!("{name}.tar.gz"));
    assert!(
        p.exists(),
        "{} is missing: run images/{name}/build.sh first (or .ci/run)",
        p.display()
    );
    p
}

/// The platforms every end-to-end test runs on: $SANDBOXD_TEST_PLATFORMS
/// (comma-separated), default "kvm,ptrace". KVM must be usable when named.
pub fn platforms() -> Vec<String> {
    let list = std::env::var("SANDBOXD_TEST_PLATFORMS").unwrap_or_else(|_| "kvm,ptrace".into());
    let list: Vec<String> = list
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if list.iter().any(|p| p == "kvm") {
        let kvm = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm");
        assert!(
            kvm.is_ok(),
            "KVM tests need /dev/kvm: {:?} (set SANDBOXD_TEST_PLATFORMS=ptrace to skip KVM)",
            kvm.err()
        );
    }
    list
}

/// A fresh temporary directory, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p =
            std::env::temp_dir().join(format!("sandboxd-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

impl TestPod {
    pub fn new(image: &Path, command: &[&str]) -> TestPod {
        TestPod {
            image: image.to_path_buf(),
            command: command.iter().map(|s| s.to_string()).collect(),
            env: vec![],
            workdir: None,
            user: None,
            platform: None,
            args: vec![],
            init: None,
            resources: None,
        }
    }

    /// Sets the pod's `resources` object (raw JSON).
    pub fn resources(mut self, json: &str) -> Self {
        self.resources = Some(json.into());
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn workdir(mut self, w: &str) -> Self {
        self.workdir = Some(w.into());
        self
    }

    pub fn user(mut self, u: &str) -> Self {
        self.user = Some(u.into());
        self
    }

    /// Sets the container's `init` field (the mini-init as PID 1).
    pub fn init(mut self, on: bool) -> Self {
        self.init = Some(on);
        self
    }

    pub fn platform(mut self, p: &str) -> Self {
        self.platform = Some(p.into());
        self
    }

    /// An extra argument to `sandboxd run` (e.g. "--strace").
    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.into());
        self
    }

    /// The pod JSON.
    pub fn json(&self) -> String {
        let cmd: Vec<String> = self.command.iter().map(|c| json_str(c)).collect();
        let env: Vec<String> = self
            .env
            .iter()
            .map(|(k, v)| format!("{}: {}", json_str(k), json_str(v)))
            .collect();
        let mut c = format!(
            "\"image\": {}, \"command\": [{}], \"env\": {{{}}}",
            json_str(self.image.to_str().unwrap()),
            cmd.join(", "),
            env.join(", ")
        );
        if let Some(w) = &self.workdir {
            c += &format!(", \"workdir\": {}", json_str(w));
        }
        if let Some(u) = &self.user {
            c += &format!(", \"user\": {}", json_str(u));
        }
        if let Some(i) = self.init {
            c += &format!(", \"init\": {i}");
        }
        let resources = self
            .resources
            .as_ref()
            .map(|r| format!("\"resources\": {r}, "))
            .unwrap_or_default();
        format!("{{{resources}\"containers\": {{\"app\": {{{c}}}}}}}")
    }

    /// Runs the pod with `sandboxd run` and waits (at most TIMEOUT).
    pub fn run(&self) -> Out {
        let dir = TempDir::new("pod");
        let pod = dir.0.join("pod.json");
        std::fs::write(&pod, self.json()).unwrap();
        let mut args = vec!["run".to_string()];
        if let Some(p) = &self.platform {
            args.extend(["--platform".into(), p.clone()]);
        }
        args.extend(self.args.iter().cloned());
        args.push(pod.to_str().unwrap().into());
        sandboxd(&args)
    }
}

/// Runs the pod `json` (written into `dir`) with `sandboxd run` on
/// platform `p`.
pub fn run_pod(dir: &TempDir, json: &serde_json::Value, p: &str) -> Out {
    let pod = dir.0.join("pod.json");
    std::fs::write(&pod, json.to_string()).unwrap();
    sandboxd(&[
        "run".into(),
        "--platform".into(),
        p.into(),
        pod.to_str().unwrap().into(),
    ])
}

/// Runs the pod `json` (written into a fresh temporary directory) with
/// `sandboxd run` on the default platform.
pub fn run_pod_json(json: &str) -> Out {
    let dir = TempDir::new("pod");
    let pod = dir.0.join("pod.json");
    std::fs::write(&pod, json).unwrap();
    sandboxd(&["run".into(), pod.to_str().unwrap().into()])
}

/// Asserts that a sandboxed run ended and printed (stdout) as `want`, a
/// native run; `what` names the run on failure.
pub fn assert_same_run(got: &Out, want: &Out, what: &str) {
    assert_eq!(
        (got.status, &got.stdout),
        (want.status, &want.stdout),
        "{what}: {}",
        got.stderr
    );
}

/// Runs `/bin/prog ARGS` from `img` in the sandbox on every platform and
/// asserts each run ends and prints as `want` (the same program run
/// natively, see `native`).
pub fn assert_runs_like(img: &Path, prog: &str, args: &[&str], want: &Out) {
    let bin = format!("/bin/{prog}");
    let mut cmd = vec![bin.as_str()];
    cmd.extend(args);
    each_platform(|p| {
        let got = TestPod::new(img, &cmd).platform(p).run();
        assert_same_run(&got, want, &format!("{prog} {args:?} on {p}"));
    });
}

/// Runs `/bin/prog ARGS` natively and in the sandbox on every platform
/// and asserts the status and stdout agree.
pub fn matches_native(img: &Path, prog: &str, args: &[&str]) {
    assert_runs_like(img, prog, args, &native(img, prog, args));
}

/// Runs the sandboxd binary with `args`; fails the test after TIMEOUT.
pub fn sandboxd(args: &[String]) -> Out {
    sandboxd_with(args, &[])
}

/// [`sandboxd`] with more environment variables (a state root, a tag).
#[allow(dead_code)]
pub fn sandboxd_with(args: &[String], env: &[(&str, &std::ffi::OsStr)]) -> Out {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sandboxd"))
        .args(args)
        .env("SANDBOXD_STORE", store())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sandboxd");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            // What it printed so far, and the pod it ran, say where it hung.
            let pods: Vec<String> = args
                .iter()
                .filter(|a| a.ends_with(".json"))
                .filter_map(|a| std::fs::read_to_string(a).ok())
                .collect();
            let (so, se) = (t_out.join().unwrap(), t_err.join().unwrap());
            panic!(
                "sandboxd {args:?} did not finish within {TIMEOUT:?}\npod: {pods:?}\nstdout: {so}\nstderr: {se}"
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Out {
        status: code,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

/// One image store for the whole test run (of this test binary).
pub fn store() -> PathBuf {
    static STORE: OnceLock<PathBuf> = OnceLock::new();
    STORE
        .get_or_init(|| {
            sweep_dead_runs();
            run_dir("store")
        })
        .clone()
}

/// A directory of this test process for `what`, removed when the process
/// exits (or, should it die first, by the next run's sweep).
fn run_dir(what: &str) -> PathBuf {
    extern "C" fn remove_own_dirs() {
        remove_dirs_of(std::process::id());
    }
    static AT_EXIT: std::sync::Once = std::sync::Once::new();
    // SAFETY: atexit only records a function to call at exit.
    AT_EXIT.call_once(|| unsafe {
        libc::atexit(remove_own_dirs);
    });
    std::env::temp_dir().join(format!("sandboxd-test-{what}-{}", std::process::id()))
}

/// Removes the run directories of test process `pid`.
fn remove_dirs_of(pid: u32) {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if run_dir_pid(&name) == Some(pid) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// The test process a run directory belongs to
/// (`sandboxd-test-{what}-{pid}`).
fn run_dir_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("sandboxd-test-")?;
    let (what, pid) = rest.rsplit_once('-')?;
    ["store", "native"]
        .iter()
        .any(|w| what == *w || what.starts_with(&format!("{w}-")))
        .then(|| pid.parse().ok())?
}

/// Removes run directories of test processes that are gone (killed
/// before their exit could).
fn sweep_dead_runs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = run_dir_pid(&name) else {
            continue;
        };
        // SAFETY: signal 0 only checks that the process exists.
        let gone = unsafe { libc::kill(pid as i32, 0) } != 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Runs a test program natively from an unpacked copy of `image`, in the
/// unpacked root (so relative paths see the same files as in the sandbox).
pub fn native(image_path: &Path, prog: &str, args: &[&str]) -> Out {
    static ROOTS: OnceLock<std::sync::Mutex<std::collections::HashMap<PathBuf, PathBuf>>> =
        OnceLock::new();
    let roots = ROOTS.get_or_init(Default::default);
    let root = {
        let mut map = roots.lock().unwrap();
        map.entry(image_path.to_path_buf())
            .or_insert_with(|| {
                let root = run_dir(&format!("native-{}", map_len()));
                std::fs::create_dir_all(&root).unwrap();
                let st = Command::new("tar")
                    .arg("-xzf")
                    .arg(image_path)
                    .arg("-C")
                    .arg(&root)
                    .status()
                    .unwrap();
                assert!(st.success());
                root
            })
            .clone()
    };
    let out = Command::new(root.join("bin").join(prog))
        .args(args)
        .current_dir(&root)
        .output()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    Out {
        status: out
            .status
            .code()
            .unwrap_or_else(|| 128 + out.status.signal().unwrap_or(0)),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

fn map_len() -> u64 {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
}

/// An unpacked copy of `image` in a fresh temporary directory, for
/// running the same programs natively.
pub fn unpack(image: &Path) -> TempDir {
    let root = TempDir::new("unpacked");
    let st = Command::new("tar")
        .arg("-xzf")
        .arg(image)
        .arg("-C")
        .arg(&root.0)
        .status()
        .unwrap();
    assert!(st.success(), "unpacking {}", image.display());
    root
}

/// Runs `body` once per platform, naming the platform on failure.
pub fn each_platform(body: impl Fn(&str)) {
    for p in platforms() {
        eprintln!("-- platform {p}");
        body(&p);
    }
}

/// Live processes whose environment carries `SANDBOXD_TEST_TAG=tag` (the
/// roles inherit SANDBOXD_* variables, and ptrace stubs are forks of the
/// sandbox).
pub fn leftovers(tag: &str) -> usize {
    let needle = format!("SANDBOXD_TEST_TAG={tag}");
    let mut n = 0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(env) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let live = std::fs::read_to_string(entry.path().join("status"))
            .is_ok_and(|s| !s.contains("State:\tZ"));
        if live && env.split(|&b| b == 0).any(|v| v == needle.as_bytes()) {
            n += 1;
        }
    }
    n
}

/// A shell loop that waits until the shell condition `cond` holds
/// (checked every 20 ms, 500 times at most, then `exit 9`): how a
/// container waits for another, or for its own background job, where a
/// sleep would only guess.
pub fn sh_until(cond: &str) -> String {
    format!("i=0; until {cond}; do i=$((i+1)); [ $i -lt 500 ] || exit 9; sleep 0.02; done")
}
