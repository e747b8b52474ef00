//! Seccomp: compiles an OCI `linux.seccomp` section into a libseccomp filter and installs it.
//!
//! The work is split in two so that the container init does almost nothing at the critical
//! moment: [`compile`] runs libseccomp (allocations, table lookups, BPF generation) early, in the
//! runtime parent or at the start of init, and keeps only the finished BPF program;
//! [`Filter::install`] is then one `seccomp(2)` call with no allocation.
//!
//! Semantics follow runc: syscall names libseccomp does not know are skipped, rules whose action
//! equals the default action are dropped, several conditions on the same argument become separate
//! rules (an OR), and `errnoRet` defaults to `EPERM`. `SCMP_ACT_NOTIFY` (seccomp user
//! notification) is not supported and is refused rather than ignored.
//!
//! Known gaps. runc also patches the program so that syscalls newer than the profile fail with
//! `ENOSYS` (letting libc fall back) instead of the default action; berth does not yet, so they get
//! the default action. And as in Docker's own profile: on 32-bit x86, `socket(2)` is reached through
//! `socketcall(2)`, whose arguments live in memory the filter cannot read, so argument rules on
//! `socket` do not hold for that ABI.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use nix::errno::Errno;
use nix::sys::memfd::{MFdFlags, memfd_create};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, LinuxSyscall,
};

/// Largest errno the kernel passes back from `SECCOMP_RET_ERRNO` (`MAX_ERRNO`).
const MAX_ERRNO: u32 = 4095;
/// `errnoRet` when a rule or the default action leaves it out, as runc does.
const DEFAULT_ERRNO: u32 = libc::EPERM as u32;
/// Syscalls take at most six arguments.
const MAX_ARGS: usize = 6;
/// The kernel's `BPF_MAXINSNS`.
const MAX_INSTRUCTIONS: usize = 4096;
/// Above this many rules a binary search over syscall numbers beats a linear scan (runc's limit).
const OPTIMIZE_ABOVE_RULES: usize = 8;
/// Size of one exported `struct sock_filter`.
const INSTRUCTION_BYTES: usize = 8;

/// What can go wrong compiling or installing a seccomp filter.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The JSON given to [`profile_from_json`] is not a valid `linux.seccomp` section (an unknown
    /// action, operator, architecture or flag is named in the message).
    #[error("invalid seccomp profile: {0}")]
    Profile(#[from] serde_json::Error),
    /// `SCMP_ACT_NOTIFY` is used but no `listenerPath` says where the agent listens.
    #[error("SCMP_ACT_NOTIFY for {what} requires linux.seccomp.listenerPath")]
    NotifyWithoutListener {
        /// The syscall(s) or "the default action".
        what: String,
    },
    /// `SCMP_ACT_NOTIFY` is used; seccomp user notification is not supported.
    #[error("SCMP_ACT_NOTIFY for {what} is not supported (seccomp user notification)")]
    NotifyUnsupported {
        /// The syscall(s) or "the default action".
        what: String,
    },
    /// An `errnoRet` (or the trace message value of `SCMP_ACT_TRACE`) is out of range.
    #[error("{action} for {what}: errnoRet {value} is out of range (at most {max})")]
    InvalidErrnoRet {
        /// The action carrying the value.
        action: LinuxSeccompAction,
        /// The syscall(s) or "the default action".
        what: String,
        /// The value given.
        value: u32,
        /// The largest value allowed for this action.
        max: u32,
    },
    /// An argument condition names an argument a syscall cannot have.
    #[error("syscall {syscall}: argument index {index} is out of range (0 to 5)")]
    InvalidArgIndex {
        /// The syscall(s) of the rule.
        syscall: String,
        /// The index given.
        index: usize,
    },
    /// libseccomp refused the default action (for example one the kernel does not support).
    #[error("default action {action}: {source}")]
    DefaultAction {
        /// The action given.
        action: LinuxSeccompAction,
        /// libseccomp's error.
        source: libseccomp::error::SeccompError,
    },
    /// libseccomp does not support an architecture.
    #[error("architecture {arch}: {source}")]
    Arch {
        /// The architecture given.
        arch: Arch,
        /// libseccomp's error.
        source: libseccomp::error::SeccompError,
    },
    /// The running kernel does not know a filter flag.
    #[error("seccomp filter flag {flag} is not supported by this kernel: {errno}")]
    FlagUnsupported {
        /// The flag given.
        flag: LinuxSeccompFilterFlag,
        /// The kernel's answer to the probe.
        errno: Errno,
    },
    /// libseccomp refused a rule.
    #[error("adding {action} rule for syscall {syscall}: {source}")]
    Rule {
        /// The syscall.
        syscall: String,
        /// The rule's action.
        action: LinuxSeccompAction,
        /// libseccomp's error.
        source: libseccomp::error::SeccompError,
    },
    /// Tuning or generating the filter failed inside libseccomp.
    #[error("generating seccomp filter: {0}")]
    Generate(#[source] libseccomp::error::SeccompError),
    /// Reading the generated BPF back failed.
    #[error("reading generated seccomp filter: {0}")]
    Export(#[from] io::Error),
    /// The generated program is malformed or too long for the kernel.
    #[error("generated seccomp filter is unusable: {0}")]
    Program(String),
    /// The kernel refused the filter. `EACCES` means the caller has neither `no_new_privs` set
    /// nor `CAP_SYS_ADMIN`.
    #[error("installing seccomp filter: {0}")]
    Install(Errno),
    /// With `SECCOMP_FILTER_FLAG_TSYNC`, another thread could not take the filter.
    #[error("installing seccomp filter: thread {tid} could not be synchronised (TSYNC)")]
    Tsync {
        /// The thread that failed.
        tid: i64,
    },
}

/// A compiled seccomp filter, ready to be installed with [`Filter::install`].
pub struct Filter {
    program: Vec<libc::sock_filter>,
    /// `program.len()`, checked to fit the kernel's limit when compiling.
    len: u16,
    flags: libc::c_ulong,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter")
            .field("instructions", &self.len)
            .field("flags", &self.flags)
            .finish()
    }
}

impl Filter {
    /// Installs the filter on the calling thread (on every thread with
    /// `SECCOMP_FILTER_FLAG_TSYNC`). One syscall, no allocation.
    ///
    /// It does not set `no_new_privs`: either the caller has set it, or it must still hold
    /// `CAP_SYS_ADMIN` (install before dropping capabilities).
    pub fn install(&self) -> Result<(), SeccompError> {
        let prog = libc::sock_fprog {
            len: self.len,
            filter: self.program.as_ptr().cast_mut(),
        };
        // SAFETY: `prog` points at `self.program`, which outlives the call; the kernel copies the
        // program and never writes through the pointer.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                self.flags,
                &raw const prog,
            )
        };
        match rc {
            0 => Ok(()),
            rc if rc < 0 => Err(SeccompError::Install(Errno::last())),
            tid => Err(SeccompError::Tsync { tid }),
        }
    }

    /// Number of BPF instructions in the program.
    pub fn instructions(&self) -> usize {
        self.program.len()
    }
}

/// Parses a `linux.seccomp` section from JSON.
pub fn profile_from_json(json: &str) -> Result<LinuxSeccomp, SeccompError> {
    Ok(serde_json::from_str(json)?)
}

/// Compiles an OCI `linux.seccomp` section into a BPF program.
///
/// The native architecture is always part of the filter, besides those listed. Call this before
/// forking or early in init; [`Filter::install`] is the only step left for the last moment.
pub fn compile(seccomp: &LinuxSeccomp) -> Result<Filter, SeccompError> {
    let syscalls = seccomp.syscalls().as_deref().unwrap_or_default();
    check_notify(seccomp, syscalls)?;

    let default_action = seccomp.default_action();
    let default = scmp_action(
        default_action,
        seccomp.default_errno_ret(),
        "the default action",
    )?;
    let mut ctx =
        ScmpFilterContext::new(default).map_err(|source| SeccompError::DefaultAction {
            action: default_action,
            source,
        })?;
    for &arch in seccomp.architectures().as_deref().unwrap_or_default() {
        ctx.add_arch(scmp_arch(arch))
            .map_err(|source| SeccompError::Arch { arch, source })?;
    }
    if syscalls.len() > OPTIMIZE_ABOVE_RULES {
        ctx.set_ctl_optimize(2).map_err(SeccompError::Generate)?;
    }
    for rule in syscalls {
        add_rule(&mut ctx, rule, default)?;
    }
    let flags = kernel_flags(seccomp.flags().as_deref().unwrap_or_default())?;
    filter_from(export(&ctx)?, flags)
}

/// Refuses `SCMP_ACT_NOTIFY` anywhere, saying whether a listener was configured at all.
fn check_notify(seccomp: &LinuxSeccomp, syscalls: &[LinuxSyscall]) -> Result<(), SeccompError> {
    let what = if seccomp.default_action() == LinuxSeccompAction::ScmpActNotify {
        "the default action".to_owned()
    } else if let Some(rule) = syscalls
        .iter()
        .find(|rule| rule.action() == LinuxSeccompAction::ScmpActNotify)
    {
        rule_name(rule)
    } else {
        return Ok(());
    };
    if seccomp.listener_path().is_none() {
        Err(SeccompError::NotifyWithoutListener { what })
    } else {
        Err(SeccompError::NotifyUnsupported { what })
    }
}

/// Maps an OCI action to libseccomp's, applying `errnoRet` (default `EPERM`) to ERRNO and TRACE.
fn scmp_action(
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    what: &str,
) -> Result<ScmpAction, SeccompError> {
    let value = |max: u32| {
        let value = errno_ret.unwrap_or(DEFAULT_ERRNO);
        if value > max {
            return Err(SeccompError::InvalidErrnoRet {
                action,
                what: what.to_owned(),
                value,
                max,
            });
        }
        Ok(value)
    };
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(value(MAX_ERRNO)? as i32),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(value(u32::from(u16::MAX))? as u16),
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(SeccompError::NotifyUnsupported {
                what: what.to_owned(),
            });
        }
    })
}

fn scmp_arch(arch: Arch) -> ScmpArch {
    match arch {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

/// Adds one OCI rule (possibly naming many syscalls) to the filter.
fn add_rule(
    ctx: &mut ScmpFilterContext,
    rule: &LinuxSyscall,
    default: ScmpAction,
) -> Result<(), SeccompError> {
    let action = scmp_action(rule.action(), rule.errno_ret(), &rule_name(rule))?;
    // libseccomp refuses a rule that repeats the default action; it would change nothing.
    if action == default {
        return Ok(());
    }
    let args = rule.args().as_deref().unwrap_or_default();
    if let Some(arg) = args.iter().find(|arg| arg.index() >= MAX_ARGS) {
        return Err(SeccompError::InvalidArgIndex {
            syscall: rule_name(rule),
            index: arg.index(),
        });
    }
    let conditions: Vec<ScmpArgCompare> = args.iter().map(condition).collect();
    let groups = condition_groups(args, &conditions);
    for name in rule.names() {
        // Profiles list syscalls of newer kernels and other ABIs; runc skips the unknown ones.
        let Ok(syscall) = ScmpSyscall::from_name(name) else {
            continue;
        };
        for group in &groups {
            ctx.add_rule_conditional(action, syscall, group)
                .map_err(|source| SeccompError::Rule {
                    syscall: name.clone(),
                    action: rule.action(),
                    source,
                })?;
        }
    }
    Ok(())
}

/// The condition sets to add as separate rules: all conditions together (an AND), unless two of
/// them test the same argument. libseccomp cannot AND two tests of one argument, so runc then adds
/// every condition as a rule of its own (an OR), and so do we.
fn condition_groups<'a>(
    args: &[LinuxSeccompArg],
    conditions: &'a [ScmpArgCompare],
) -> Vec<&'a [ScmpArgCompare]> {
    let mut seen = [false; MAX_ARGS];
    let repeats_an_index = args.iter().any(|arg| {
        seen.get_mut(arg.index())
            .is_some_and(|slot| std::mem::replace(slot, true))
    });
    if repeats_an_index {
        conditions.chunks(1).collect()
    } else {
        vec![conditions]
    }
}

/// Converts one OCI argument test. For MASKED_EQ, OCI's `value` is the mask and `valueTwo` the
/// value the masked argument must equal.
fn condition(arg: &LinuxSeccompArg) -> ScmpArgCompare {
    let (op, datum) = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => (ScmpCompareOp::NotEqual, arg.value()),
        LinuxSeccompOperator::ScmpCmpLt => (ScmpCompareOp::Less, arg.value()),
        LinuxSeccompOperator::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, arg.value()),
        LinuxSeccompOperator::ScmpCmpEq => (ScmpCompareOp::Equal, arg.value()),
        LinuxSeccompOperator::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, arg.value()),
        LinuxSeccompOperator::ScmpCmpGt => (ScmpCompareOp::Greater, arg.value()),
        LinuxSeccompOperator::ScmpCmpMaskedEq => (
            ScmpCompareOp::MaskedEqual(arg.value()),
            arg.value_two().unwrap_or(0),
        ),
    };
    // The index was checked against MAX_ARGS, so it fits.
    ScmpArgCompare::new(arg.index() as u32, op, datum)
}

/// Turns the OCI flags into `seccomp(2)` flag bits, checking that the kernel knows each one.
fn kernel_flags(flags: &[LinuxSeccompFilterFlag]) -> Result<libc::c_ulong, SeccompError> {
    let mut bits = 0;
    for &flag in flags {
        let bit = match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            // It only changes how a notifying syscall waits for the agent. Without NOTIFY rules
            // (refused above) it has nothing to act on, and the kernel rejects it without a
            // listener, so it is left out.
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => continue,
        };
        probe_flag(bit).map_err(|errno| SeccompError::FlagUnsupported { flag, errno })?;
        bits |= bit;
    }
    Ok(bits)
}

/// Asks the kernel whether it knows a filter flag: with no program, a known flag fails with
/// `EFAULT` (the program cannot be read) and an unknown one with `EINVAL`. Nothing is installed.
fn probe_flag(bit: libc::c_ulong) -> Result<(), Errno> {
    // SAFETY: a null program pointer is never dereferenced by us; the kernel reports EFAULT.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            bit,
            std::ptr::null::<libc::sock_fprog>(),
        )
    };
    match (rc, Errno::last()) {
        (rc, Errno::EFAULT) if rc < 0 => Ok(()),
        (rc, errno) if rc < 0 => Err(errno),
        // Cannot happen with a null program; treat it as unsupported rather than trust it.
        _ => Err(Errno::EINVAL),
    }
}

/// [`compile`], remembering each program in `cache_dir` under a digest of the profile: a
/// profile seen before (Docker's default, on every container) is read back instead of being
/// compiled again by libseccomp, which takes tens of milliseconds. The directory must be
/// writable by root only, like the runtime's state root it lives in: whoever can write it
/// chooses the filters. A cache that cannot be read or written is just not used.
pub fn compile_cached(seccomp: &LinuxSeccomp, cache_dir: &Path) -> Result<Filter, SeccompError> {
    let Ok(json) = serde_json::to_vec(seccomp) else {
        return compile(seccomp);
    };
    let mut hasher = Sha256::new();
    // The libseccomp version and the native architecture shape the program too.
    let v = libseccomp::ScmpVersion::current().map_or((0, 0, 0), |v| (v.major, v.minor, v.micro));
    hasher.update(format!(
        "berth-seccomp-v1 {v:?} {}\n",
        std::env::consts::ARCH
    ));
    hasher.update(&json);
    let path = cache_dir.join(format!("{}.bpf", hex::encode(hasher.finalize())));
    let flags = kernel_flags(seccomp.flags().as_deref().unwrap_or_default())?;
    if let Ok(bytes) = std::fs::read(&path)
        && let Ok(program) = decode(&bytes)
        && let Ok(filter) = filter_from(program, flags)
    {
        return Ok(filter);
    }
    let filter = compile(seccomp)?;
    let _ = store(&path, &filter.program);
    Ok(filter)
}

fn store(path: &Path, program: &[libc::sock_filter]) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("no directory"))?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let bytes: Vec<u8> = program
        .iter()
        .flat_map(|i| {
            let mut b = Vec::with_capacity(INSTRUCTION_BYTES);
            b.extend_from_slice(&i.code.to_ne_bytes());
            b.push(i.jt);
            b.push(i.jf);
            b.extend_from_slice(&i.k.to_ne_bytes());
            b
        })
        .collect();
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(&bytes)?;
    drop(f);
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

fn filter_from(
    program: Vec<libc::sock_filter>,
    flags: libc::c_ulong,
) -> Result<Filter, SeccompError> {
    let len = u16::try_from(program.len())
        .ok()
        .filter(|&len| usize::from(len) <= MAX_INSTRUCTIONS)
        .ok_or_else(|| {
            SeccompError::Program(format!(
                "{} instructions, the kernel accepts at most {MAX_INSTRUCTIONS}",
                program.len()
            ))
        })?;
    Ok(Filter {
        program,
        len,
        flags,
    })
}

/// Has libseccomp generate the BPF program and reads it back as kernel instructions.
fn export(ctx: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>, SeccompError> {
    // libseccomp 2.5 can only export to a file descriptor.
    let fd = memfd_create(c"berth-seccomp", MFdFlags::MFD_CLOEXEC).map_err(io::Error::from)?;
    let mut file = File::from(fd);
    ctx.export_bpf(&file).map_err(SeccompError::Generate)?;
    file.seek(SeekFrom::Start(0))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    decode(&bytes)
}

/// Splits exported bytes into `struct sock_filter`s (native byte order, as libseccomp writes).
fn decode(bytes: &[u8]) -> Result<Vec<libc::sock_filter>, SeccompError> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(INSTRUCTION_BYTES) {
        return Err(SeccompError::Program(format!(
            "{} bytes is not a whole number of instructions",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(INSTRUCTION_BYTES)
        .filter_map(|chunk| match *chunk {
            [c0, c1, jt, jf, k0, k1, k2, k3] => Some(libc::sock_filter {
                code: u16::from_ne_bytes([c0, c1]),
                jt,
                jf,
                k: u32::from_ne_bytes([k0, k1, k2, k3]),
            }),
            _ => None,
        })
        .collect())
}

/// Names a rule in errors by its syscalls.
fn rule_name(rule: &LinuxSyscall) -> String {
    rule.names().join(",")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use oci_spec::runtime::{LinuxSeccompArgBuilder, LinuxSeccompBuilder, LinuxSyscallBuilder};

    fn arg(index: usize, op: LinuxSeccompOperator, value: u64) -> LinuxSeccompArg {
        LinuxSeccompArgBuilder::default()
            .index(index)
            .op(op)
            .value(value)
            .build()
            .unwrap()
    }

    #[test]
    fn seccomp_same_index_conditions_become_separate_rules() {
        let args = [
            arg(0, LinuxSeccompOperator::ScmpCmpLt, 38),
            arg(0, LinuxSeccompOperator::ScmpCmpGt, 40),
        ];
        let conditions: Vec<_> = args.iter().map(condition).collect();
        let groups = condition_groups(&args, &conditions);
        assert_eq!(groups.len(), 2);
        assert!(groups.iter().all(|group| group.len() == 1));
    }

    #[test]
    fn seccomp_distinct_index_conditions_stay_one_rule() {
        let args = [
            arg(0, LinuxSeccompOperator::ScmpCmpEq, 1),
            arg(1, LinuxSeccompOperator::ScmpCmpEq, 2),
        ];
        let conditions: Vec<_> = args.iter().map(condition).collect();
        let groups = condition_groups(&args, &conditions);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].len(), 2);
        assert_eq!(condition_groups(&[], &[]), vec![&[] as &[ScmpArgCompare]]);
    }

    #[test]
    fn seccomp_decode_rejects_partial_instructions() {
        assert!(decode(&[0; 12]).is_err());
        assert!(decode(&[]).is_err());
        let one = decode(&[6, 0, 1, 2, 0, 0, 0xff, 0x7f]).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].code, u16::from_ne_bytes([6, 0]));
        assert_eq!((one[0].jt, one[0].jf), (1, 2));
        assert_eq!(one[0].k, u32::from_ne_bytes([0, 0, 0xff, 0x7f]));
    }

    #[test]
    fn seccomp_errno_defaults_to_eperm_and_is_bounded() {
        let errno = LinuxSeccompAction::ScmpActErrno;
        assert_eq!(
            scmp_action(errno, None, "x").unwrap(),
            ScmpAction::Errno(libc::EPERM)
        );
        assert_eq!(
            scmp_action(errno, Some(38), "x").unwrap(),
            ScmpAction::Errno(38)
        );
        assert!(scmp_action(errno, Some(4096), "x").is_err());
        let trace = LinuxSeccompAction::ScmpActTrace;
        assert_eq!(
            scmp_action(trace, Some(65535), "x").unwrap(),
            ScmpAction::Trace(65535)
        );
        assert!(scmp_action(trace, Some(65536), "x").is_err());
    }

    #[test]
    fn seccomp_rule_equal_to_default_is_dropped() {
        let seccomp = LinuxSeccompBuilder::default()
            .default_action(LinuxSeccompAction::ScmpActErrno)
            .syscalls(vec![
                LinuxSyscallBuilder::default()
                    .names(vec!["mkdir".to_owned()])
                    .action(LinuxSeccompAction::ScmpActErrno)
                    .build()
                    .unwrap(),
            ])
            .build()
            .unwrap();
        let with_rule = compile(&seccomp).unwrap();
        let bare = compile(
            &LinuxSeccompBuilder::default()
                .default_action(LinuxSeccompAction::ScmpActErrno)
                .build()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(with_rule.instructions(), bare.instructions());
    }

    fn program_bytes(f: &Filter) -> Vec<(u16, u8, u8, u32)> {
        f.program
            .iter()
            .map(|i| (i.code, i.jt, i.jf, i.k))
            .collect()
    }

    #[test]
    fn seccomp_cache_returns_the_compiled_program_and_survives_a_bad_entry() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let profile = |name: &str| {
            LinuxSeccompBuilder::default()
                .default_action(LinuxSeccompAction::ScmpActAllow)
                .syscalls(vec![
                    LinuxSyscallBuilder::default()
                        .names(vec![name.to_owned()])
                        .action(LinuxSeccompAction::ScmpActErrno)
                        .build()
                        .unwrap(),
                ])
                .build()
                .unwrap()
        };
        let fresh = compile(&profile("mkdir")).unwrap();
        let first = compile_cached(&profile("mkdir"), &cache).unwrap();
        let entries: Vec<_> = std::fs::read_dir(&cache).unwrap().flatten().collect();
        assert_eq!(entries.len(), 1, "one program stored");
        let second = compile_cached(&profile("mkdir"), &cache).unwrap();
        assert_eq!(program_bytes(&first), program_bytes(&fresh));
        assert_eq!(program_bytes(&second), program_bytes(&fresh));
        // Another profile is another entry, never the first one's program.
        let other = compile_cached(&profile("rmdir"), &cache).unwrap();
        assert_ne!(program_bytes(&other), program_bytes(&fresh));
        assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 2);
        // A damaged entry is compiled again and replaced.
        std::fs::write(entries[0].path(), b"junk").unwrap();
        let again = compile_cached(&profile("mkdir"), &cache).unwrap();
        assert_eq!(program_bytes(&again), program_bytes(&fresh));
        assert_eq!(std::fs::metadata(entries[0].path()).unwrap().len() % 8, 0);
    }
}
