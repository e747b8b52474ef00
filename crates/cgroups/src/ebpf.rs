//! The cgroup v2 device filter: a `BPF_PROG_TYPE_CGROUP_DEVICE` program generated from the
//! device rules, loaded and attached to the cgroup directory with raw bpf(2) calls.
//!
//! The program sees `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`,
//! where `access_type` is `(access bits << 16) | device type`, and returns 1 to allow, 0 to
//! deny. One open can ask for several access bits at once (`O_RDWR` is read|write), so the
//! program checks each requested bit on its own: for that bit, the last rule that matches the
//! device decides, and no match means deny.

use std::fs::File;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use crate::CgroupError;
use crate::devices::{ACC_MKNOD, ACC_READ, ACC_WRITE, Kind, Rule};

// Commands, types and flags from include/uapi/linux/bpf.h.
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;
const BPF_DEVCG_DEV_BLOCK: i32 = 1;
const BPF_DEVCG_DEV_CHAR: i32 = 2;

// Instruction encoding from include/uapi/linux/bpf_common.h and bpf.h.
pub(crate) const LDX_MEM_W: u8 = 0x61;
pub(crate) const ALU64_AND_K: u8 = 0x57;
pub(crate) const ALU64_RSH_K: u8 = 0x77;
pub(crate) const ALU64_MOV_K: u8 = 0xb7;
pub(crate) const ALU64_MOV_X: u8 = 0xbf;
pub(crate) const JMP32_JEQ_K: u8 = 0x16;
pub(crate) const JMP32_JNE_K: u8 = 0x56;
pub(crate) const JMP_JA: u8 = 0x05;
pub(crate) const JMP_EXIT: u8 = 0x95;

/// The registers the program uses: R1 is the context, R0 the return value, R2..R5 hold the
/// device type, requested access, major and minor.
const R0: u8 = 0;
const R1: u8 = 1;
const R_TYPE: u8 = 2;
const R_ACCESS: u8 = 3;
const R_MAJOR: u8 = 4;
const R_MINOR: u8 = 5;

/// Upper bound on rules: keeps jump offsets within i16 and the program far below the
/// verifier's limits.
const MAX_RULES: usize = 1024;
const LOAD_EAGAIN_RETRIES: usize = 10;
const VERIFIER_LOG_SIZE: usize = 64 * 1024;

/// One eBPF instruction, laid out as `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Insn {
    pub code: u8,
    regs: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        // The dst_reg:4/src_reg:4 bitfield order follows the byte order.
        #[cfg(target_endian = "little")]
        let regs = (src << 4) | (dst & 0xf);
        #[cfg(target_endian = "big")]
        let regs = (dst << 4) | (src & 0xf);
        Insn {
            code,
            regs,
            off,
            imm,
        }
    }

    /// The destination register.
    #[cfg(test)]
    pub fn dst(&self) -> u8 {
        #[cfg(target_endian = "little")]
        return self.regs & 0xf;
        #[cfg(target_endian = "big")]
        return self.regs >> 4;
    }

    /// The source register.
    #[cfg(test)]
    pub fn src(&self) -> u8 {
        #[cfg(target_endian = "little")]
        return self.regs >> 4;
        #[cfg(target_endian = "big")]
        return self.regs & 0xf;
    }
}

/// A tiny assembler with forward labels.
#[derive(Default)]
struct Asm {
    insns: Vec<Insn>,
    labels: Vec<Option<usize>>,
    fixups: Vec<(usize, usize)>,
}

impl Asm {
    fn emit(&mut self, code: u8, dst: u8, src: u8, off: i16, imm: i32) {
        self.insns.push(Insn::new(code, dst, src, off, imm));
    }

    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }

    fn bind(&mut self, label: usize) {
        self.labels[label] = Some(self.insns.len());
    }

    fn jump(&mut self, code: u8, dst: u8, imm: i32, label: usize) {
        self.fixups.push((self.insns.len(), label));
        self.emit(code, dst, 0, 0, imm);
    }

    fn ret(&mut self, value: i32) {
        self.emit(ALU64_MOV_K, R0, 0, 0, value);
        self.emit(JMP_EXIT, 0, 0, 0, 0);
    }

    fn finish(mut self) -> Result<Vec<Insn>, CgroupError> {
        for (at, label) in self.fixups {
            let target = self.labels[label].ok_or_else(|| too_big("unbound label"))?;
            let off =
                i64::try_from(target).unwrap_or(i64::MAX) - i64::try_from(at).unwrap_or(0) - 1;
            self.insns[at].off = i16::try_from(off).map_err(|_| too_big("jump out of range"))?;
        }
        Ok(self.insns)
    }
}

fn too_big(reason: &str) -> CgroupError {
    CgroupError::InvalidResource {
        setting: "devices".to_owned(),
        reason: format!("device filter program cannot be built: {reason}"),
    }
}

/// Generates the filter program for `rules` (see the module doc for its semantics).
pub(crate) fn program(rules: &[Rule]) -> Result<Vec<Insn>, CgroupError> {
    if rules.len() > MAX_RULES {
        return Err(too_big(&format!("more than {MAX_RULES} rules")));
    }
    let mut asm = Asm::default();
    asm.emit(LDX_MEM_W, R_TYPE, R1, 0, 0);
    asm.emit(ALU64_AND_K, R_TYPE, 0, 0, 0xffff);
    asm.emit(LDX_MEM_W, R_ACCESS, R1, 0, 0);
    asm.emit(ALU64_RSH_K, R_ACCESS, 0, 0, 16);
    asm.emit(LDX_MEM_W, R_MAJOR, R1, 4, 0);
    asm.emit(LDX_MEM_W, R_MINOR, R1, 8, 0);
    for bit in [ACC_READ, ACC_WRITE, ACC_MKNOD] {
        access_bit_section(&mut asm, rules, bit);
    }
    asm.ret(1);
    asm.finish()
}

/// Decides one access bit: skipped when not requested, else the last matching rule with that
/// bit allows (go on to the next bit) or denies (return 0); no match denies.
fn access_bit_section(asm: &mut Asm, rules: &[Rule], bit: u32) {
    let next_bit = asm.label();
    // Access bits are 1, 2 and 4, so the casts to i32 are exact.
    asm.emit(ALU64_MOV_X, R0, R_ACCESS, 0, 0);
    asm.emit(ALU64_AND_K, R0, 0, 0, bit as i32);
    asm.jump(JMP32_JEQ_K, R0, 0, next_bit);
    let mut decided = false;
    for rule in rules.iter().rev().filter(|r| r.access & bit != 0) {
        let next_rule = asm.label();
        match rule.kind {
            Kind::All => {}
            Kind::Char => asm.jump(JMP32_JNE_K, R_TYPE, BPF_DEVCG_DEV_CHAR, next_rule),
            Kind::Block => asm.jump(JMP32_JNE_K, R_TYPE, BPF_DEVCG_DEV_BLOCK, next_rule),
        }
        // JMP32 compares the low 32 bits, so a u32 reinterpreted as i32 matches exactly.
        if let Some(major) = rule.major {
            asm.jump(JMP32_JNE_K, R_MAJOR, major as i32, next_rule);
        }
        if let Some(minor) = rule.minor {
            asm.jump(JMP32_JNE_K, R_MINOR, minor as i32, next_rule);
        }
        if rule.allow {
            asm.jump(JMP_JA, 0, 0, next_bit);
        } else {
            asm.ret(0);
        }
        asm.bind(next_rule);
        if rule.kind == Kind::All && rule.major.is_none() && rule.minor.is_none() {
            // This rule matches every device, so nothing after it can run; the verifier
            // refuses unreachable instructions, so neither earlier rules nor the default may
            // be emitted.
            decided = true;
            break;
        }
    }
    if !decided {
        asm.ret(0);
    }
    asm.bind(next_bit);
}

/// Loads `insns` and makes it the only device filter of the cgroup at `dir`. The new program
/// is attached before the old ones are detached: in between both apply, which can only deny
/// more, never allow more.
pub(crate) fn attach(dir: &Path, insns: &[Insn]) -> Result<(), CgroupError> {
    let cgroup = File::open(dir).map_err(|source| CgroupError::Read {
        path: dir.to_owned(),
        source,
    })?;
    let old = attached_programs(dir, &cgroup)?;
    let prog = load(dir, insns)?;
    let mut attr = AttachAttr {
        target_fd: fd_u32(&cgroup),
        attach_bpf_fd: fd_u32(&prog),
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map_err(|e| bpf_error("BPF_PROG_ATTACH", dir, e))?;
    for old in old {
        let mut attr = AttachAttr {
            attach_bpf_fd: fd_u32(&old),
            attach_flags: 0,
            ..attr
        };
        bpf(BPF_PROG_DETACH, &mut attr).map_err(|e| bpf_error("BPF_PROG_DETACH", dir, e))?;
    }
    Ok(())
}

/// The prefix of `union bpf_attr` for BPF_PROG_LOAD that we fill in.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
}

/// BPF_PROG_ATTACH / BPF_PROG_DETACH.
#[repr(C)]
#[derive(Clone, Copy)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// BPF_PROG_QUERY. Spelt out to `revision` because kernels from 6.17 write that field
/// whatever size we pass.
#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
    prog_attach_flags: u64,
    link_ids: u64,
    link_attach_flags: u64,
    revision: u64,
}

/// BPF_PROG_GET_FD_BY_ID.
#[repr(C)]
#[derive(Default)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, initialised #[repr(C)] prefix of `union bpf_attr` for `cmd`;
    // the kernel accesses at most size_of::<T>() bytes of it, and any pointers inside it
    // refer to buffers the caller keeps alive across this call.
    let ret =
        unsafe { libc::syscall(libc::SYS_bpf, cmd, std::ptr::from_mut(attr), size_of::<T>()) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn bpf_fd<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<OwnedFd> {
    let fd = bpf(cmd, attr)?;
    let fd = i32::try_from(fd).map_err(|_| io::Error::other("bpf returned an invalid fd"))?;
    // SAFETY: on success these commands return a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn fd_u32(fd: &impl AsRawFd) -> u32 {
    // Open file descriptors are never negative.
    u32::try_from(fd.as_raw_fd()).unwrap_or(u32::MAX)
}

fn bpf_error(op: &'static str, dir: &Path, source: io::Error) -> CgroupError {
    CgroupError::Bpf {
        op,
        path: dir.to_owned(),
        source,
        log: String::new(),
    }
}

fn load(dir: &Path, insns: &[Insn]) -> Result<OwnedFd, CgroupError> {
    let license = c"Apache-2.0";
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: u32::try_from(insns.len()).map_err(|_| too_big("too many instructions"))?,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: *b"berth_devices\0\0\0",
        ..ProgLoadAttr::default()
    };
    let mut last = None;
    for _ in 0..LOAD_EAGAIN_RETRIES {
        match bpf_fd(BPF_PROG_LOAD, &mut attr) {
            Ok(fd) => return Ok(fd),
            // The verifier returns EAGAIN when a signal interrupts it.
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => last = Some(e),
            Err(e) => return Err(load_error_with_log(dir, attr, e)),
        }
    }
    Err(bpf_error(
        "BPF_PROG_LOAD",
        dir,
        last.unwrap_or_else(|| io::Error::from_raw_os_error(libc::EAGAIN)),
    ))
}

/// Loads again with the verifier log on, to explain a failed load.
fn load_error_with_log(dir: &Path, mut attr: ProgLoadAttr, first: io::Error) -> CgroupError {
    let mut log = vec![0u8; VERIFIER_LOG_SIZE];
    attr.log_level = 1;
    attr.log_size = VERIFIER_LOG_SIZE as u32;
    attr.log_buf = log.as_mut_ptr() as u64;
    // A second attempt that succeeds would leak nothing: the fd is dropped right here.
    let _ = bpf_fd(BPF_PROG_LOAD, &mut attr);
    let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
    let text = String::from_utf8_lossy(&log[..end]).trim_end().to_owned();
    CgroupError::Bpf {
        op: "BPF_PROG_LOAD",
        path: dir.to_owned(),
        source: first,
        log: if text.is_empty() {
            text
        } else {
            format!("\n{text}")
        },
    }
}

/// File descriptors of the device programs attached to `cgroup` now. Programs we are not
/// allowed to open (an LSM's) are skipped: they can only restrict further.
fn attached_programs(dir: &Path, cgroup: &File) -> Result<Vec<OwnedFd>, CgroupError> {
    let mut capacity = 64usize;
    for _ in 0..4 {
        let mut ids = vec![0u32; capacity];
        let mut attr = QueryAttr {
            target_fd: fd_u32(cgroup),
            attach_type: BPF_CGROUP_DEVICE,
            prog_ids: ids.as_mut_ptr() as u64,
            prog_cnt: u32::try_from(capacity).unwrap_or(u32::MAX),
            ..QueryAttr::default()
        };
        match bpf(BPF_PROG_QUERY, &mut attr) {
            Ok(_) => {
                ids.truncate(attr.prog_cnt as usize);
                return ids
                    .iter()
                    .filter_map(|id| program_fd(dir, *id).transpose())
                    .collect();
            }
            // ENOSPC reports the real count in prog_cnt.
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                capacity = (attr.prog_cnt as usize).max(capacity * 2);
            }
            Err(e) => return Err(bpf_error("BPF_PROG_QUERY", dir, e)),
        }
    }
    Err(bpf_error(
        "BPF_PROG_QUERY",
        dir,
        io::Error::other("the list of attached programs kept growing"),
    ))
}

fn program_fd(dir: &Path, id: u32) -> Result<Option<OwnedFd>, CgroupError> {
    let mut attr = GetFdAttr {
        prog_id: id,
        ..GetFdAttr::default()
    };
    match bpf_fd(BPF_PROG_GET_FD_BY_ID, &mut attr) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES)) => Ok(None),
        // The program went away between the query and now.
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(bpf_error("BPF_PROG_GET_FD_BY_ID", dir, e)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::devices::{self, Kind, Rule};

    const DEV_CHAR: u32 = BPF_DEVCG_DEV_CHAR as u32;
    const DEV_BLOCK: u32 = BPF_DEVCG_DEV_BLOCK as u32;

    /// Runs a program on one device access, the way the kernel would, for the instructions the
    /// generator uses. Also checks what the verifier insists on: every jump goes forward and
    /// lands inside the program, and the program ends in `exit`.
    fn run(prog: &[Insn], dev_type: u32, major: u32, minor: u32, access: u32) -> u64 {
        let ctx = [(access << 16) | dev_type, major, minor];
        let mut reg = [0u64; 11];
        let mut pc = 0usize;
        for _ in 0..10_000 {
            let i = prog[pc];
            let (dst, src) = (usize::from(i.dst()), usize::from(i.src()));
            let imm = i64::from(i.imm) as u64;
            let mut next = pc + 1;
            let jump = |taken: bool| {
                assert!(i.off >= 0, "backward jump at {pc}");
                if taken {
                    pc + 1 + i.off as usize
                } else {
                    pc + 1
                }
            };
            match i.code {
                LDX_MEM_W => {
                    assert_eq!(src, 1, "loads only from the context");
                    reg[dst] = u64::from(ctx[i.off as usize / 4]);
                }
                ALU64_AND_K => reg[dst] &= imm,
                ALU64_RSH_K => reg[dst] >>= imm,
                ALU64_MOV_K => reg[dst] = imm,
                ALU64_MOV_X => reg[dst] = reg[src],
                JMP32_JEQ_K => next = jump(reg[dst] as u32 == i.imm as u32),
                JMP32_JNE_K => next = jump(reg[dst] as u32 != i.imm as u32),
                JMP_JA => next = jump(true),
                JMP_EXIT => return reg[0],
                other => panic!("unexpected opcode {other:#x}"),
            }
            assert!(next < prog.len(), "jump past the end at {pc}");
            pc = next;
        }
        panic!("program did not terminate");
    }

    /// Like the verifier: every instruction must be reachable from the first.
    fn assert_all_reachable(prog: &[Insn]) {
        let mut seen = vec![false; prog.len()];
        let mut todo = vec![0usize];
        while let Some(pc) = todo.pop() {
            if pc >= prog.len() || std::mem::replace(&mut seen[pc], true) {
                continue;
            }
            let i = prog[pc];
            let target = pc + 1 + i.off as usize;
            match i.code {
                JMP_EXIT => {}
                JMP_JA => todo.push(target),
                JMP32_JEQ_K | JMP32_JNE_K => todo.extend([pc + 1, target]),
                _ => todo.push(pc + 1),
            }
        }
        let unreachable: Vec<usize> = (0..prog.len()).filter(|pc| !seen[*pc]).collect();
        assert!(
            unreachable.is_empty(),
            "unreachable instructions {unreachable:?}"
        );
    }

    /// The documented semantics, written plainly.
    fn model(rules: &[Rule], dev_type: u32, major: u32, minor: u32, access: u32) -> bool {
        [ACC_READ, ACC_WRITE, ACC_MKNOD]
            .iter()
            .filter(|b| access & **b != 0)
            .all(|bit| {
                rules
                    .iter()
                    .rev()
                    .find(|r| {
                        r.access & bit != 0
                            && match r.kind {
                                Kind::All => true,
                                Kind::Char => dev_type == DEV_CHAR,
                                Kind::Block => dev_type == DEV_BLOCK,
                            }
                            && r.major.is_none_or(|m| m == major)
                            && r.minor.is_none_or(|m| m == minor)
                    })
                    .is_some_and(|r| r.allow)
            })
    }

    fn r(allow: bool, kind: Kind, major: Option<u32>, minor: Option<u32>, access: u32) -> Rule {
        Rule {
            allow,
            kind,
            major,
            minor,
            access,
        }
    }

    const RWM: u32 = ACC_READ | ACC_WRITE | ACC_MKNOD;
    const RW: u32 = ACC_READ | ACC_WRITE;

    /// Docker's default device rules.
    fn docker_defaults() -> Vec<Rule> {
        vec![
            r(false, Kind::All, None, None, RWM),
            r(true, Kind::Char, None, None, ACC_MKNOD),
            r(true, Kind::Block, None, None, ACC_MKNOD),
            r(true, Kind::Char, Some(1), Some(3), RWM),
            r(true, Kind::Char, Some(1), Some(5), RWM),
            r(true, Kind::Char, Some(1), Some(7), RWM),
            r(true, Kind::Char, Some(5), Some(0), RWM),
            r(true, Kind::Char, Some(5), Some(2), RWM),
            r(true, Kind::Char, Some(136), None, RWM),
            r(true, Kind::Char, Some(10), Some(200), RWM),
        ]
    }

    #[test]
    fn docker_default_rules() {
        let prog = program(&docker_defaults()).unwrap();
        assert_all_reachable(&prog);
        assert_eq!(run(&prog, DEV_CHAR, 1, 3, RW), 1, "/dev/null rw");
        assert_eq!(run(&prog, DEV_CHAR, 136, 7, RW), 1, "/dev/pts/7");
        assert_eq!(run(&prog, DEV_CHAR, 1, 1, ACC_READ), 0, "/dev/mem");
        assert_eq!(run(&prog, DEV_BLOCK, 8, 0, ACC_READ), 0, "/dev/sda read");
        assert_eq!(
            run(&prog, DEV_BLOCK, 8, 0, ACC_MKNOD),
            1,
            "mknod of a block device"
        );
        assert_eq!(
            run(&prog, DEV_BLOCK, 8, 0, ACC_MKNOD | ACC_READ),
            0,
            "mknod+read"
        );
        assert_eq!(run(&prog, DEV_CHAR, 1, 3, 0), 1, "no access bits asked");
    }

    #[test]
    fn later_rules_override_earlier_ones_per_access_bit() {
        let rules = vec![
            r(true, Kind::All, None, None, RWM),
            r(false, Kind::Char, Some(1), None, ACC_WRITE),
            r(true, Kind::Char, Some(1), Some(3), RW),
            r(true, Kind::Char, Some(4), Some(1), ACC_READ),
            r(true, Kind::Char, Some(4), Some(1), ACC_WRITE),
            r(false, Kind::Block, None, None, ACC_READ),
            r(true, Kind::Block, Some(u32::MAX), Some(u32::MAX), ACC_READ),
        ];
        let prog = program(&rules).unwrap();
        assert_eq!(run(&prog, DEV_CHAR, 1, 5, ACC_WRITE), 0);
        assert_eq!(run(&prog, DEV_CHAR, 1, 5, ACC_READ), 1);
        assert_eq!(run(&prog, DEV_CHAR, 1, 3, RW), 1);
        assert_eq!(run(&prog, DEV_BLOCK, 7, 0, ACC_READ), 0);
        assert_eq!(
            run(&prog, DEV_BLOCK, u32::MAX, u32::MAX, ACC_READ),
            1,
            "u32 majors match exactly"
        );
    }

    #[test]
    fn compiled_program_agrees_with_the_model() {
        let rule_sets = vec![
            docker_defaults(),
            vec![],
            vec![
                r(false, Kind::All, None, None, RWM),
                r(true, Kind::Char, Some(1), Some(3), RWM),
            ],
            vec![
                r(true, Kind::All, None, None, RWM),
                r(false, Kind::Char, Some(1), Some(3), RWM),
            ],
            vec![r(true, Kind::All, None, None, RWM)],
            vec![
                r(true, Kind::All, None, None, RWM),
                r(false, Kind::All, None, None, RWM),
            ],
            vec![
                r(true, Kind::Char, Some(1), None, ACC_READ),
                r(true, Kind::Char, Some(1), None, ACC_WRITE),
                r(false, Kind::All, None, Some(3), ACC_WRITE),
                r(true, Kind::Block, None, Some(3), ACC_MKNOD | ACC_WRITE),
                r(false, Kind::Char, Some(2), Some(2), RWM),
                r(true, Kind::All, Some(2), None, ACC_READ),
            ],
        ];
        for rules in &rule_sets {
            let prog = program(rules).unwrap();
            assert_all_reachable(&prog);
            for dev_type in [DEV_CHAR, DEV_BLOCK] {
                for major in [0, 1, 2, 5, 136] {
                    for minor in [0, 2, 3, 5] {
                        for access in 0..=RWM {
                            let want = model(rules, dev_type, major, minor, access);
                            let got = run(&prog, dev_type, major, minor, access) == 1;
                            assert_eq!(
                                got, want,
                                "{rules:?} type {dev_type} {major}:{minor} access {access}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn oci_rules_compile_and_fifo_rules_vanish() {
        use crate::devices::tests::rule;
        use oci_spec::runtime::LinuxDeviceType as T;
        let rules = devices::normalise(&[
            rule(false, T::A, None, None, "rwm"),
            rule(true, T::P, None, None, "rwm"),
            rule(true, T::C, Some(1), Some(3), "rwm"),
        ])
        .unwrap();
        assert_eq!(rules.len(), 2);
        let prog = program(&rules).unwrap();
        assert_eq!(run(&prog, DEV_CHAR, 1, 3, RWM), 1);
        assert_eq!(run(&prog, DEV_CHAR, 1, 5, ACC_READ), 0);
    }

    #[test]
    fn too_many_rules_are_refused() {
        let rules = vec![r(true, Kind::Char, Some(1), Some(3), RWM); MAX_RULES + 1];
        assert!(matches!(
            program(&rules),
            Err(CgroupError::InvalidResource { .. })
        ));
        assert!(program(&rules[..MAX_RULES]).is_ok());
    }
}
