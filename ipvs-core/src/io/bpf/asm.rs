//! A tiny eBPF assembler: the instructions the XDP program needs, labels resolved when the
//! program is finished, and the `ld_imm64` map-fd pseudo instruction.
//!
//! Encoding (kernel `Documentation/bpf/standardization/instruction-set.rst`): 8 bytes per
//! slot: opcode, `dst` (low nibble) and `src` (high nibble) registers, a signed 16-bit offset,
//! a signed 32-bit immediate, little-endian (the only byte order this module supports).
//! `ld_imm64` takes two slots. A jump's offset counts slots from the one after the jump.

use std::collections::HashMap;

use thiserror::Error;

/// eBPF registers. `R0` return value, `R1`–`R5` arguments (clobbered by calls), `R6`–`R9`
/// callee-saved, `R10` the read-only frame pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Reg {
    R0 = 0,
    R1,
    R2,
    R3,
    R4,
    R5,
    R6,
    R7,
    R8,
    R9,
    R10,
}

/// Memory access size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// 8 bits.
    B,
    /// 16 bits.
    H,
    /// 32 bits.
    W,
    /// 64 bits.
    DW,
}

impl Size {
    fn bits(self) -> u8 {
        match self {
            Size::W => 0x00,
            Size::H => 0x08,
            Size::B => 0x10,
            Size::DW => 0x18,
        }
    }
}

/// 64-bit ALU operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Alu {
    Add = 0x00,
    Sub = 0x10,
    Mul = 0x20,
    Or = 0x40,
    And = 0x50,
    Lsh = 0x60,
    Rsh = 0x70,
    Xor = 0xa0,
    Mov = 0xb0,
}

/// Conditional jump operations (unsigned unless named `S…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Jmp {
    Eq = 0x10,
    Gt = 0x20,
    Ge = 0x30,
    Set = 0x40,
    Ne = 0x50,
    Lt = 0xa0,
    Le = 0xb0,
}

const CLS_LD: u8 = 0x00;
const CLS_LDX: u8 = 0x01;
const CLS_ST: u8 = 0x02;
const CLS_STX: u8 = 0x03;
const CLS_JMP: u8 = 0x05;
const CLS_ALU64: u8 = 0x07;
const MODE_IMM: u8 = 0x00;
const MODE_MEM: u8 = 0x60;
const SRC_K: u8 = 0x00;
const SRC_X: u8 = 0x08;
const OP_JA: u8 = 0x00;
const OP_CALL: u8 = 0x80;
const OP_EXIT: u8 = 0x90;
/// `BPF_PSEUDO_MAP_FD`: `ld_imm64` whose immediate is a map fd.
const PSEUDO_MAP_FD: u8 = 1;

/// One 8-byte instruction slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// Opcode.
    pub code: u8,
    /// Destination register.
    pub dst: u8,
    /// Source register.
    pub src: u8,
    /// Signed offset.
    pub off: i16,
    /// Signed immediate.
    pub imm: i32,
}

impl Insn {
    /// The kernel's little-endian encoding.
    pub fn encode(&self) -> [u8; 8] {
        let off = self.off.to_le_bytes();
        let imm = self.imm.to_le_bytes();
        [
            self.code,
            (self.dst & 0x0f) | (self.src << 4),
            off[0],
            off[1],
            imm[0],
            imm[1],
            imm[2],
            imm[3],
        ]
    }
}

/// A jump target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Label(u32);

/// Why a program could not be assembled.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AsmError {
    /// A jump names a label that was never bound.
    #[error("label {0} is used but never bound")]
    Unbound(u32),
    /// A label was bound twice.
    #[error("label {0} is bound twice")]
    Rebound(u32),
    /// A jump is farther than an `i16` offset reaches.
    #[error("jump to label {0} is out of range")]
    OutOfRange(u32),
}

/// The assembler: append instructions, bind labels, then [`Asm::finish`].
#[derive(Debug, Default)]
pub struct Asm {
    insns: Vec<Insn>,
    next_label: u32,
    bound: HashMap<Label, usize>,
    fixups: Vec<(usize, Label)>,
    error: Option<AsmError>,
}

impl Asm {
    /// An empty program.
    pub fn new() -> Asm {
        Asm::default()
    }

    /// A fresh label, bound later with [`Asm::bind`].
    pub fn label(&mut self) -> Label {
        self.next_label += 1;
        Label(self.next_label)
    }

    /// Binds `l` to the next instruction.
    pub fn bind(&mut self, l: Label) {
        if self.bound.insert(l, self.insns.len()).is_some() && self.error.is_none() {
            self.error = Some(AsmError::Rebound(l.0));
        }
    }

    fn push(&mut self, code: u8, dst: Reg, src: Reg, off: i16, imm: i32) {
        self.insns.push(Insn {
            code,
            dst: dst as u8,
            src: src as u8,
            off,
            imm,
        });
    }

    /// `dst op= imm` (64-bit).
    pub fn alu_imm(&mut self, op: Alu, dst: Reg, imm: i32) {
        self.push(CLS_ALU64 | op as u8 | SRC_K, dst, Reg::R0, 0, imm);
    }

    /// `dst op= src` (64-bit).
    pub fn alu_reg(&mut self, op: Alu, dst: Reg, src: Reg) {
        self.push(CLS_ALU64 | op as u8 | SRC_X, dst, src, 0, 0);
    }

    /// `dst = imm`.
    pub fn mov_imm(&mut self, dst: Reg, imm: i32) {
        self.alu_imm(Alu::Mov, dst, imm);
    }

    /// `dst = src`.
    pub fn mov_reg(&mut self, dst: Reg, src: Reg) {
        self.alu_reg(Alu::Mov, dst, src);
    }

    /// `dst = *(size *)(src + off)`.
    pub fn ldx(&mut self, size: Size, dst: Reg, src: Reg, off: i16) {
        self.push(CLS_LDX | MODE_MEM | size.bits(), dst, src, off, 0);
    }

    /// `*(size *)(dst + off) = src`.
    pub fn stx(&mut self, size: Size, dst: Reg, off: i16, src: Reg) {
        self.push(CLS_STX | MODE_MEM | size.bits(), dst, src, off, 0);
    }

    /// `*(size *)(dst + off) = imm`.
    pub fn st_imm(&mut self, size: Size, dst: Reg, off: i16, imm: i32) {
        self.push(CLS_ST | MODE_MEM | size.bits(), dst, Reg::R0, off, imm);
    }

    /// `dst = map fd` (two slots; the verifier turns it into a map pointer).
    pub fn ld_map_fd(&mut self, dst: Reg, fd: i32) {
        self.insns.push(Insn {
            code: CLS_LD | MODE_IMM | Size::DW.bits(),
            dst: dst as u8,
            src: PSEUDO_MAP_FD,
            off: 0,
            imm: fd,
        });
        self.insns.push(Insn {
            code: 0,
            dst: 0,
            src: 0,
            off: 0,
            imm: 0,
        });
    }

    fn jump(&mut self, code: u8, dst: Reg, src: Reg, imm: i32, target: Label) {
        self.fixups.push((self.insns.len(), target));
        self.push(code, dst, src, 0, imm);
    }

    /// `if dst op imm goto target`.
    pub fn jmp_imm(&mut self, op: Jmp, dst: Reg, imm: i32, target: Label) {
        self.jump(CLS_JMP | op as u8 | SRC_K, dst, Reg::R0, imm, target);
    }

    /// `if dst op src goto target`.
    pub fn jmp_reg(&mut self, op: Jmp, dst: Reg, src: Reg, target: Label) {
        self.jump(CLS_JMP | op as u8 | SRC_X, dst, src, 0, target);
    }

    /// `goto target`.
    pub fn ja(&mut self, target: Label) {
        self.jump(CLS_JMP | OP_JA, Reg::R0, Reg::R0, 0, target);
    }

    /// Calls helper number `helper`.
    pub fn call(&mut self, helper: i32) {
        self.push(CLS_JMP | OP_CALL, Reg::R0, Reg::R0, 0, helper);
    }

    /// `return r0`.
    pub fn exit(&mut self) {
        self.push(CLS_JMP | OP_EXIT, Reg::R0, Reg::R0, 0, 0);
    }

    /// Resolves labels and returns the instruction slots.
    pub fn finish(mut self) -> Result<Vec<Insn>, AsmError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        for &(at, label) in &self.fixups {
            let target = *self.bound.get(&label).ok_or(AsmError::Unbound(label.0))?;
            let off = target as i64 - at as i64 - 1;
            self.insns[at].off = i16::try_from(off).map_err(|_| AsmError::OutOfRange(label.0))?;
        }
        Ok(self.insns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_known_instructions() {
        let mut a = Asm::new();
        a.mov_reg(Reg::R6, Reg::R1); // bf 16 00 00 00 00 00 00
        a.ldx(Size::W, Reg::R2, Reg::R1, 4); // 61 12 04 00 00 00 00 00
        a.ld_map_fd(Reg::R1, 7); // 18 11 00 00 07 00 00 00 + zero slot
        a.st_imm(Size::B, Reg::R10, -1, 0); // 72 0a ff ff 00 00 00 00
        a.mov_imm(Reg::R0, 2); // b7 00 00 00 02 00 00 00
        a.exit(); // 95 00 ...
        let bytes: Vec<[u8; 8]> = a.finish().unwrap().iter().map(Insn::encode).collect();
        assert_eq!(bytes[0], [0xbf, 0x16, 0, 0, 0, 0, 0, 0]);
        assert_eq!(bytes[1], [0x61, 0x12, 4, 0, 0, 0, 0, 0]);
        assert_eq!(bytes[2], [0x18, 0x11, 0, 0, 7, 0, 0, 0]);
        assert_eq!(bytes[3], [0; 8]);
        assert_eq!(bytes[4], [0x72, 0x0a, 0xff, 0xff, 0, 0, 0, 0]);
        assert_eq!(bytes[5], [0xb7, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(bytes[6], [0x95, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn resolves_forward_and_backward_labels_in_slots() {
        let mut a = Asm::new();
        let fwd = a.label();
        let back = a.label();
        a.bind(back);
        a.jmp_imm(Jmp::Eq, Reg::R1, 0, fwd); // slot 0
        a.ld_map_fd(Reg::R1, 3); // slots 1-2
        a.ja(back); // slot 3 -> 0: off -4
        a.bind(fwd);
        a.exit(); // slot 4: off from slot 0 = 3
        let insns = a.finish().unwrap();
        assert_eq!(insns[0].off, 3);
        assert_eq!(insns[3].off, -4);
    }

    #[test]
    fn unbound_and_rebound_labels_are_errors() {
        let mut a = Asm::new();
        let l = a.label();
        a.ja(l);
        assert_eq!(a.finish(), Err(AsmError::Unbound(1)));
        let mut a = Asm::new();
        let l = a.label();
        a.bind(l);
        a.bind(l);
        assert_eq!(a.finish(), Err(AsmError::Rebound(1)));
    }
}
