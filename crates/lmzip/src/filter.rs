//! Reversible transforms of a block before coding (solid mode).
//!
//! **x86 branch transform** (E8/E9, as in paq, zpaq and LZMA's BCJ): in x86 machine code a
//! `call` (E8) or `jmp` (E9) is followed by a 32-bit offset relative to the next instruction.
//! The same target called from many places has many relative offsets but one absolute address;
//! writing `offset + position` makes the repeats visible to the models. The scan is the same in
//! both directions (the opcode bytes are never changed, and the 4 bytes after one are skipped),
//! so the transform is exactly reversible for any input, x86 or not.

/// Whether `block` looks like x86 code: at least one E8/E9 per 200 bytes followed by an offset
/// whose high byte is 00 or FF (a near target).
pub fn looks_like_x86(block: &[u8]) -> bool {
    let mut near = 0usize;
    scan(block, |_, offset| {
        if matches!(offset[3], 0x00 | 0xFF) {
            near += 1;
        }
    });
    near * 200 >= block.len() && near > 0
}

/// The block with every E8/E9 offset made absolute.
pub fn x86_forward(block: &[u8]) -> Vec<u8> {
    let mut out = block.to_vec();
    scan_mut(&mut out, |at, offset| offset.wrapping_add(at));
    out
}

/// Undo [`x86_forward`] in place.
pub fn x86_inverse(block: &mut [u8]) {
    scan_mut(block, |at, absolute| absolute.wrapping_sub(at));
}

/// Call `f(position after the offset, offset bytes)` for every E8/E9 with 4 bytes after it.
fn scan(block: &[u8], mut f: impl FnMut(usize, &[u8])) {
    let mut i = 0;
    while i + 5 <= block.len() {
        if matches!(block[i], 0xE8 | 0xE9) {
            f(i + 5, &block[i + 1..i + 5]);
            i += 5;
        } else {
            i += 1;
        }
    }
}

/// Replace every E8/E9 offset `v` by `f(position after it, v)` (little-endian, wrapping).
fn scan_mut(block: &mut [u8], f: impl Fn(u32, u32) -> u32) {
    let mut i = 0;
    while i + 5 <= block.len() {
        if matches!(block[i], 0xE8 | 0xE9) {
            let field: &mut [u8; 4] = (&mut block[i + 1..i + 5]).try_into().expect("4 bytes");
            *field = f((i + 5) as u32, u32::from_le_bytes(*field)).to_le_bytes();
            i += 5;
        } else {
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_undoes_forward_on_any_bytes() {
        let mut x = 1u64;
        for len in [0, 1, 4, 5, 6, 100, 4099] {
            let block: Vec<u8> = (0..len)
                .map(|i| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    // Plenty of E8/E9, also at the very end.
                    if i % 7 == 0 { 0xE8 } else { (x >> 56) as u8 }
                })
                .collect();
            let mut back = x86_forward(&block);
            x86_inverse(&mut back);
            assert_eq!(back, block, "{len}");
        }
    }

    #[test]
    fn calls_to_one_target_become_one_address() {
        // Two calls to address 0x1000, from offsets 0 and 10.
        let mut code = vec![0x90u8; 20];
        code[0] = 0xE8;
        code[1..5].copy_from_slice(&(0x1000u32 - 5).to_le_bytes());
        code[10] = 0xE8;
        code[11..15].copy_from_slice(&(0x1000u32 - 15).to_le_bytes());
        let t = x86_forward(&code);
        assert_eq!(t[1..5], t[11..15]);
        assert!(looks_like_x86(&code));
        assert!(!looks_like_x86(b"plain text without any such bytes at all"));
    }
}
