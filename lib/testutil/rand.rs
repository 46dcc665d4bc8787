//! A small, fast, deterministic generator for the tests' random inputs
//! (xorshift64*): the same sequence every run, so a failure reproduces.

pub struct Rng(u64);

impl Rng {
    /// Any seed but 0 (which xorshift never leaves).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
