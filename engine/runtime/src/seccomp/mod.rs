//! Seccomp: the OCI profile compiled to classic BPF in pure Rust, and Docker's default profile.

mod default_profile;
#[cfg(target_arch = "x86_64")]
mod table_x86_64;

pub use default_profile::default_profile;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};

/// Seccomp profile problems, naming the JSON field.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The profile asks for something the compiler does not support.
    #[error("invalid seccomp profile: `{field}`: {message}")]
    Invalid {
        /// The JSON path under linux.seccomp.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The kernel refused the filter.
    #[error("installing seccomp filter: {0}")]
    Install(std::io::Error),
}

/// One classic BPF instruction (same layout as `struct sock_filter`).
pub type Insn = libc::sock_filter;

const LD_W_ABS: u16 = 0x20;
const JEQ_K: u16 = 0x15;
const JGT_K: u16 = 0x25;
const JGE_K: u16 = 0x35;
const AND_K: u16 = 0x54;
const RET_K: u16 = 0x06;

const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_KILL_THREAD: u32 = 0;
const RET_TRAP: u32 = 0x0003_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_TRACE: u32 = 0x7ff0_0000;
const RET_LOG: u32 = 0x7ffc_0000;
const RET_ALLOW: u32 = 0x7fff_0000;

const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARGS: u32 = 16;

#[cfg(target_arch = "x86_64")]
const NATIVE_ARCH: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
const NATIVE_ARCH: u32 = 0xc000_00b7;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const NATIVE_ARCH: u32 = 0;

fn stmt(code: u16, k: u32) -> Insn {
    Insn {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Insn {
    Insn { code, jt, jf, k }
}

/// Looks up a syscall number for the native architecture.
pub fn syscall_number(name: &str) -> Option<i64> {
    #[cfg(target_arch = "x86_64")]
    {
        table_x86_64::X86_64
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, nr)| *nr)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = name;
        None
    }
}

/// The BPF return value of an action.
fn action_value(
    action: LinuxSeccompAction,
    errno: Option<u32>,
    field: &str,
) -> Result<u32, SeccompError> {
    let errno = errno.unwrap_or(libc::EPERM as u32) & 0xffff;
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => RET_KILL_THREAD,
        LinuxSeccompAction::ScmpActKillProcess => RET_KILL_PROCESS,
        LinuxSeccompAction::ScmpActTrap => RET_TRAP,
        LinuxSeccompAction::ScmpActErrno => RET_ERRNO | errno,
        LinuxSeccompAction::ScmpActTrace => RET_TRACE | errno,
        LinuxSeccompAction::ScmpActLog => RET_LOG,
        LinuxSeccompAction::ScmpActAllow => RET_ALLOW,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(SeccompError::Invalid {
                field: field.to_string(),
                message:
                    "SCMP_ACT_NOTIFY needs a seccomp agent, which berth-runtime does not support"
                        .into(),
            });
        }
    })
}

/// Jump target placeholder inside a rule block: "the rule does not match".
const FAIL: u8 = 0xff;

/// Emits the checks for one argument condition; FAIL jumps are patched by the caller.
fn emit_condition(
    out: &mut Vec<Insn>,
    index: usize,
    op: LinuxSeccompOperator,
    value: u64,
    value_two: u64,
) {
    let lo_off = OFF_ARGS + 8 * index as u32;
    let hi_off = lo_off + 4;
    let (vh, vl) = ((value >> 32) as u32, value as u32);
    match op {
        LinuxSeccompOperator::ScmpCmpEq => {
            out.push(stmt(LD_W_ABS, hi_off));
            out.push(jump(JEQ_K, vh, 0, FAIL));
            out.push(stmt(LD_W_ABS, lo_off));
            out.push(jump(JEQ_K, vl, 0, FAIL));
        }
        LinuxSeccompOperator::ScmpCmpNe => {
            out.push(stmt(LD_W_ABS, hi_off));
            out.push(jump(JEQ_K, vh, 0, 2));
            out.push(stmt(LD_W_ABS, lo_off));
            out.push(jump(JEQ_K, vl, FAIL, 0));
        }
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            let (wh, wl) = ((value_two >> 32) as u32, value_two as u32);
            out.push(stmt(LD_W_ABS, hi_off));
            out.push(stmt(AND_K, vh));
            out.push(jump(JEQ_K, wh, 0, FAIL));
            out.push(stmt(LD_W_ABS, lo_off));
            out.push(stmt(AND_K, vl));
            out.push(jump(JEQ_K, wl, 0, FAIL));
        }
        LinuxSeccompOperator::ScmpCmpGt | LinuxSeccompOperator::ScmpCmpGe => {
            out.push(stmt(LD_W_ABS, hi_off));
            out.push(jump(JGT_K, vh, 3, 0));
            out.push(jump(JEQ_K, vh, 0, FAIL));
            out.push(stmt(LD_W_ABS, lo_off));
            let code = if op == LinuxSeccompOperator::ScmpCmpGt {
                JGT_K
            } else {
                JGE_K
            };
            out.push(jump(code, vl, 0, FAIL));
        }
        LinuxSeccompOperator::ScmpCmpLt | LinuxSeccompOperator::ScmpCmpLe => {
            out.push(stmt(LD_W_ABS, hi_off));
            out.push(jump(JGE_K, vh, 0, 3));
            out.push(jump(JEQ_K, vh, 0, FAIL));
            out.push(stmt(LD_W_ABS, lo_off));
            let code = if op == LinuxSeccompOperator::ScmpCmpLt {
                JGE_K
            } else {
                JGT_K
            };
            out.push(jump(code, vl, FAIL, 0));
        }
    }
}

/// Compiles an OCI seccomp profile into a BPF program for the native architecture.
pub fn compile(profile: &LinuxSeccomp) -> Result<Vec<Insn>, SeccompError> {
    let default = action_value(
        profile.default_action(),
        profile.default_errno_ret(),
        "linux.seccomp.defaultAction",
    )?;
    for (i, a) in profile.architectures().iter().flatten().enumerate() {
        let known = matches!(a, Arch::ScmpArchNative) || *a as u32 == NATIVE_ARCH;
        if !known {
            tracing::debug!(index = i, arch = ?a, "seccomp: no syscall table for this architecture; its calls get the default action");
        }
    }
    // A foreign ABI must not slip past deny rules written for the native numbers.
    let foreign = if default == RET_ALLOW || default == RET_LOG {
        RET_KILL_PROCESS
    } else {
        default
    };
    let mut prog = vec![
        stmt(LD_W_ABS, OFF_ARCH),
        jump(JEQ_K, NATIVE_ARCH, 1, 0),
        stmt(RET_K, foreign),
        stmt(LD_W_ABS, OFF_NR),
    ];
    #[cfg(target_arch = "x86_64")]
    {
        // x32 system calls carry bit 30 and reuse x86_64's arch value.
        prog.push(jump(JGE_K, 0x4000_0000, 0, 1));
        prog.push(stmt(RET_K, foreign));
    }
    let mut a_is_nr = true;
    for (si, sc) in profile.syscalls().iter().flatten().enumerate() {
        let field = format!("linux.seccomp.syscalls[{si}]");
        let action = action_value(sc.action(), sc.errno_ret(), &format!("{field}.action"))?;
        if action == default {
            continue;
        }
        let args = sc.args().clone().unwrap_or_default();
        for (ai, a) in args.iter().enumerate() {
            if a.index() > 5 {
                return Err(SeccompError::Invalid {
                    field: format!("{field}.args[{ai}].index"),
                    message: format!("{} is above 5", a.index()),
                });
            }
        }
        for name in sc.names() {
            let Some(nr) = syscall_number(name) else {
                tracing::debug!(syscall = %name, "seccomp: unknown syscall on this architecture, skipped");
                continue;
            };
            let mut block = Vec::new();
            if !a_is_nr {
                block.push(stmt(LD_W_ABS, OFF_NR));
            }
            let jeq_at = block.len();
            block.push(jump(JEQ_K, nr as u32, 0, FAIL));
            for a in &args {
                let v2 = a.value_two().unwrap_or(0);
                let (value, value_two) = if a.op() == LinuxSeccompOperator::ScmpCmpMaskedEq {
                    // OCI: value is the mask, valueTwo the expected result; libseccomp callers
                    // like Docker's profile leave valueTwo out and mean "masked value == 0".
                    (a.value(), v2)
                } else {
                    (a.value(), 0)
                };
                emit_condition(&mut block, a.index(), a.op(), value, value_two);
            }
            block.push(stmt(RET_K, action));
            let len = block.len();
            if len > 250 {
                return Err(SeccompError::Invalid {
                    field: format!("{field}.args"),
                    message: "too many conditions".into(),
                });
            }
            for (i, ins) in block.iter_mut().enumerate().skip(jeq_at) {
                let is_jump = ins.code & 0x07 == 0x05;
                if !is_jump {
                    continue;
                }
                let to_end = (len - i - 1) as u8;
                if ins.jt == FAIL {
                    ins.jt = to_end;
                }
                if ins.jf == FAIL {
                    ins.jf = to_end;
                }
            }
            a_is_nr = args.is_empty();
            prog.extend(block);
        }
    }
    prog.push(stmt(RET_K, default));
    if prog.len() > 4096 {
        return Err(SeccompError::Invalid {
            field: "linux.seccomp.syscalls".into(),
            message: format!("{} BPF instructions exceed the kernel's 4096", prog.len()),
        });
    }
    Ok(prog)
}

/// Filter flags for the seccomp(2) call.
pub fn flags(profile: &LinuxSeccomp) -> libc::c_ulong {
    let mut f = 0;
    for flag in profile.flags().iter().flatten() {
        f |= match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => 1,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => 2,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => 4,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => 0,
        };
    }
    f
}

/// Installs a compiled filter on the calling thread.
pub fn install(prog: &[Insn], flags: libc::c_ulong) -> Result<(), SeccompError> {
    crate::sys::seccomp_install(prog, flags).map_err(SeccompError::Install)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny interpreter for the instructions the compiler emits.
    fn run(prog: &[Insn], nr: u32, args: [u64; 6]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_le_bytes());
        data[4..8].copy_from_slice(&NATIVE_ARCH.to_le_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        let mut acc = 0u32;
        let mut pc = 0usize;
        loop {
            let ins = prog[pc];
            match ins.code {
                LD_W_ABS => {
                    let o = ins.k as usize;
                    acc = u32::from_le_bytes(data[o..o + 4].try_into().unwrap());
                }
                AND_K => acc &= ins.k,
                RET_K => return ins.k,
                JEQ_K | JGT_K | JGE_K => {
                    let c = match ins.code {
                        JEQ_K => acc == ins.k,
                        JGT_K => acc > ins.k,
                        _ => acc >= ins.k,
                    };
                    pc += if c { ins.jt } else { ins.jf } as usize;
                }
                other => panic!("unexpected opcode {other:#x}"),
            }
            pc += 1;
        }
    }

    fn profile(json: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(json).unwrap()
    }

    fn nr(n: &str) -> u32 {
        syscall_number(n).unwrap() as u32
    }

    #[test]
    fn errno_rule_and_default() {
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]
        }));
        let prog = compile(&p).unwrap();
        assert_eq!(run(&prog, nr("mkdir"), [0; 6]), RET_ERRNO | 13);
        assert_eq!(run(&prog, nr("getpid"), [0; 6]), RET_ALLOW);
    }

    #[test]
    fn argument_operators() {
        let cases = [
            (
                "SCMP_CMP_EQ",
                5u64,
                0u64,
                vec![(5u64, true), (6, false), (5 | 1 << 32, false)],
            ),
            (
                "SCMP_CMP_NE",
                5,
                0,
                vec![(5, false), (6, true), (5 | 1 << 32, true)],
            ),
            (
                "SCMP_CMP_GT",
                5,
                0,
                vec![(5, false), (6, true), (1 << 32, true), (4, false)],
            ),
            (
                "SCMP_CMP_GE",
                5,
                0,
                vec![(5, true), (4, false), (1 << 33, true)],
            ),
            (
                "SCMP_CMP_LT",
                5,
                0,
                vec![(4, true), (5, false), (1 << 32, false)],
            ),
            ("SCMP_CMP_LE", 5, 0, vec![(5, true), (6, false), (0, true)]),
            (
                "SCMP_CMP_MASKED_EQ",
                0xff,
                0x12,
                vec![(0x112, true), (0x113, false)],
            ),
        ];
        for (op, value, two, checks) in cases {
            let p = profile(serde_json::json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                              "args": [{"index": 1, "value": value, "valueTwo": two, "op": op}]}]
            }));
            let prog = compile(&p).unwrap();
            for (arg, denied) in checks {
                let got = run(&prog, nr("kill"), [0, arg, 0, 0, 0, 0]);
                assert_eq!(got == RET_ERRNO | 1, denied, "{op} {value} vs {arg}");
            }
        }
    }

    #[test]
    fn two_args_are_anded() {
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ALLOW",
                          "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                                   {"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]},
                         {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]
        }));
        let prog = compile(&p).unwrap();
        assert_eq!(run(&prog, nr("kill"), [1, 9, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(&prog, nr("kill"), [1, 8, 0, 0, 0, 0]), RET_ERRNO | 1);
        assert_eq!(run(&prog, nr("getpid"), [0; 6]), RET_ALLOW);
    }

    #[test]
    fn notify_and_bad_index_name_the_field() {
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                          "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]}]
        }));
        let e = compile(&p).unwrap_err().to_string();
        assert!(e.contains("linux.seccomp.syscalls[0].args[0].index"), "{e}");
        let p = profile(serde_json::json!({"defaultAction": "SCMP_ACT_NOTIFY"}));
        assert!(
            compile(&p)
                .unwrap_err()
                .to_string()
                .contains("defaultAction")
        );
    }

    #[test]
    fn docker_default_profile_compiles() {
        let p = default_profile(&["CAP_CHOWN".to_string()]);
        let prog = compile(&p).unwrap();
        assert!(prog.len() < 4096);
        assert_eq!(run(&prog, nr("read"), [0; 6]), RET_ALLOW);
        assert_eq!(run(&prog, nr("mount"), [0; 6]), RET_ERRNO | 1);
        assert_eq!(run(&prog, nr("socket"), [40, 0, 0, 0, 0, 0]), RET_ERRNO | 1);
        assert_eq!(run(&prog, nr("socket"), [2, 0, 0, 0, 0, 0]), RET_ALLOW);
        // clone without namespace flags is fine, with CLONE_NEWUSER it is refused.
        assert_eq!(run(&prog, nr("clone"), [0x11, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(
            run(&prog, nr("clone"), [0x1000_0000, 0, 0, 0, 0, 0]),
            RET_ERRNO | 1
        );
        assert_eq!(run(&prog, nr("clone3"), [0; 6]), RET_ERRNO | 38);
        let admin = compile(&default_profile(&["CAP_SYS_ADMIN".to_string()])).unwrap();
        assert_eq!(run(&admin, nr("mount"), [0; 6]), RET_ALLOW);
    }
}
