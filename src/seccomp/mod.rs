//! Seccomp policies, one per role (`gofer`, `sentry`), each an allowlist
//! with the reason for every rule beside it, installed last in each role's
//! set-up.
//!
//! A policy is a function returning a `Policy` (a rule map) so that callers
//! can extend it before `install`. Any syscall not in the allowlist kills
//! the whole process (`SECCOMP_RET_KILL_PROCESS`): a handler cannot
//! intercept that, so no later code can turn a violation into a silent
//! failure; the launcher then reports "killed by SIGSYS".
//!
//! Debugging: with `SANDBOXD_SECCOMP_LOG=1` in the launcher's environment
//! (it is passed to the roles) a violation is allowed and logged by the
//! kernel instead (`dmesg` / audit log: `type=1326 ... syscall=N`). Never
//! use it for untrusted guests.
//!
//! Every policy is paired with a second filter that makes `clone3` fail
//! with ENOSYS: its arguments sit in memory that BPF cannot inspect, and
//! glibc falls back to `clone`, whose flags the policies do check. (With
//! several filters the strictest verdict wins, so the main filter allows
//! `clone3` and this one turns it into ENOSYS.)

mod common;
pub mod gofer;
pub mod sentry;

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// Failure to build or install a filter.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("build seccomp filter")]
    Build(#[source] seccompiler::BackendError),
    #[error("install seccomp filter")]
    Install(#[source] seccompiler::Error),
}

/// Rules per syscall number: a syscall with an empty rule list is allowed
/// whatever its arguments; otherwise one of its rules must match.
#[derive(Default)]
pub struct Policy {
    rules: BTreeMap<i64, Vec<SeccompRule>>,
}

impl Policy {
    /// Allows `sysno` whatever its arguments. `_why` documents the rule.
    pub fn allow(&mut self, sysno: libc::c_long, _why: &str) -> &mut Self {
        self.rules.insert(sysno, Vec::new());
        self
    }

    /// Allows `sysno` when all of `conds` hold; several calls for the same
    /// syscall are alternatives. `_why` documents the rule.
    pub fn allow_if(
        &mut self,
        sysno: libc::c_long,
        conds: Vec<SeccompCondition>,
        _why: &str,
    ) -> &mut Self {
        let rule = SeccompRule::new(conds).expect("a rule with at least one condition");
        self.rules.entry(sysno).or_default().push(rule);
        self
    }

    /// Whether `sysno` appears in the policy.
    pub fn mentions(&self, sysno: libc::c_long) -> bool {
        self.rules.contains_key(&sysno)
    }

    /// Compiles the policy with `default` for everything not allowed.
    pub fn compile(self, default: SeccompAction) -> Result<BpfProgram, SeccompError> {
        let filter = SeccompFilter::new(
            self.rules,
            default,
            SeccompAction::Allow,
            TargetArch::x86_64,
        )
        .map_err(SeccompError::Build)?;
        BpfProgram::try_from(filter).map_err(SeccompError::Build)
    }
}

/// A condition on argument `arg` (a 64-bit compare).
pub fn cond(arg: u8, op: SeccompCmpOp, value: u64) -> SeccompCondition {
    SeccompCondition::new(arg, SeccompCmpArgLen::Qword, op, value).expect("argument index below 6")
}

/// A condition on the low 32 bits of argument `arg` (ints, ioctl requests).
pub fn cond32(arg: u8, op: SeccompCmpOp, value: u64) -> SeccompCondition {
    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value).expect("argument index below 6")
}

/// `arg & bits == 0`.
pub fn has_none(arg: u8, bits: u64) -> SeccompCondition {
    cond(arg, SeccompCmpOp::MaskedEq(bits), 0)
}

/// `arg & bits == bits`.
pub fn has_all(arg: u8, bits: u64) -> SeccompCondition {
    cond(arg, SeccompCmpOp::MaskedEq(bits), bits)
}

/// What a violation does: kill the process, or log it when
/// `SANDBOXD_SECCOMP_LOG=1` (debugging only).
pub fn default_action() -> SeccompAction {
    match std::env::var("SANDBOXD_SECCOMP_LOG").as_deref() {
        Ok("1") => SeccompAction::Log,
        _ => SeccompAction::KillProcess,
    }
}

/// The filter that turns `clone3` into ENOSYS (see the module doc).
fn clone3_enosys() -> Result<BpfProgram, SeccompError> {
    let rules = BTreeMap::from([(libc::SYS_clone3, Vec::new())]);
    let errno = SeccompAction::Errno(libc::ENOSYS as u32);
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, errno, TargetArch::x86_64)
        .map_err(SeccompError::Build)?;
    BpfProgram::try_from(filter).map_err(SeccompError::Build)
}

/// Both programs of a role, compiled and ready to install.
pub struct Compiled {
    main: BpfProgram,
    clone3: BpfProgram,
}

/// Compiles `policy` (which must allow `clone3`, see the module doc).
pub fn compile(mut policy: Policy, default: SeccompAction) -> Result<Compiled, SeccompError> {
    policy.allow(libc::SYS_clone3, "answered ENOSYS by the second filter");
    Ok(Compiled {
        main: policy.compile(default)?,
        clone3: clone3_enosys()?,
    })
}

/// Installs both filters on the calling thread (and so on every thread it
/// creates later; call it before creating threads). Sets no_new_privs.
/// Allocation-free, so a test may call it in a forked child.
pub fn install(compiled: &Compiled) -> Result<(), SeccompError> {
    seccompiler::apply_filter(&compiled.clone3).map_err(SeccompError::Install)?;
    seccompiler::apply_filter(&compiled.main).map_err(SeccompError::Install)
}
