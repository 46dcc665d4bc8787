//! Bytes in, lines out: the one line buffer of the programs that read
//! lines (log files, log-show's standard input, the kernel's records), and
//! its one policy for a line too long to hold.
//!
//! A line is the bytes up to an LF, handed out without it. A line longer
//! than the buffer's `max` is handed out in pieces of `max` bytes, each
//! taken as a line: never held whole, never dropped. When the input ends,
//! `finish` makes a last line without LF a line.
//!
//! Pure: the caller reads into `space` (large chunks) and says how much
//! came with `filled`; lines are found with memchr.

use std::ops::Range;

pub struct LineBuffer {
    buf: Vec<u8>,
    /// The held bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    max: usize,
}

/// The length of the line `data` starts with, its LF included: `None`
/// while it may go on; `max` bytes of a line longer than that.
pub fn line_len(data: &[u8], max: usize) -> Option<usize> {
    // A line of exactly `max` bytes is whole: its LF may be one further.
    match memchr::memchr(b'\n', &data[..data.len().min(max + 1)]) {
        Some(lf) => Some(lf + 1),
        None if data.len() > max => Some(max),
        None => None,
    }
}

impl LineBuffer {
    /// A buffer whose lines are at most `max` bytes (at least 1).
    pub fn new(max: usize) -> LineBuffer {
        LineBuffer {
            buf: Vec::new(),
            start: 0,
            end: 0,
            max: max.max(1),
        }
    }

    /// Room for at least `want` more bytes, the bytes held moved to the
    /// front first: read into it, then say how much came with `filled`.
    pub fn space(&mut self, want: usize) -> &mut [u8] {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() < self.end + want {
            self.buf.resize(self.end + want, 0);
        }
        &mut self.buf[self.end..]
    }

    /// `n` bytes were put at the start of `space`.
    pub fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.space(bytes.len())[..bytes.len()].copy_from_slice(bytes);
        self.filled(bytes.len());
    }

    /// The input ended: what is held after the last LF is a line.
    pub fn finish(&mut self) {
        if self.end > self.start && self.buf[self.end - 1] != b'\n' {
            self.push(b"\n");
        }
    }

    /// Where the next line is in `get`, without its LF.
    pub fn next_range(&mut self) -> Option<Range<usize>> {
        // `line_len`, with where the LF is kept: this is the hot path.
        let from = self.start;
        let held = &self.buf[from..self.end];
        let to = match memchr::memchr(b'\n', &held[..held.len().min(self.max + 1)]) {
            Some(lf) => {
                self.start = from + lf + 1;
                from + lf
            }
            None if held.len() > self.max => {
                self.start = from + self.max;
                self.start
            }
            None => return None,
        };
        Some(from..to)
    }

    /// The next line, without its LF.
    pub fn next_line(&mut self) -> Option<&[u8]> {
        let range = self.next_range()?;
        Some(&self.buf[range])
    }

    /// Bytes of a line handed out by `next_range`, until the next `space`.
    pub fn get(&self, range: Range<usize>) -> &[u8] {
        &self.buf[range]
    }

    /// The bytes held that are not handed out yet.
    pub fn held(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Hands out the first `n` bytes held, for a caller that frames lines
    /// itself (through `line_len`): where they are in `get`.
    pub fn take(&mut self, n: usize) -> Range<usize> {
        let from = self.start;
        self.start = (self.start + n).min(self.end);
        from..self.start
    }

    /// Forgets everything held.
    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(b: &mut LineBuffer) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(line) = b.next_line() {
            out.push(String::from_utf8_lossy(line).into_owned());
        }
        out
    }

    #[test]
    fn lines_come_whole_once_their_lf_is_in() {
        let mut b = LineBuffer::new(100);
        b.push(b"one\ntw");
        assert_eq!(lines(&mut b), ["one"]);
        assert_eq!(b.held(), b"tw");
        b.push(b"o\n\nthree");
        assert_eq!(lines(&mut b), ["two", ""]);
        b.finish();
        assert_eq!(lines(&mut b), ["three"]);
        assert!(b.held().is_empty());
        b.finish();
        assert!(lines(&mut b).is_empty());
    }

    #[test]
    fn a_line_longer_than_max_comes_in_pieces_of_max() {
        let mut b = LineBuffer::new(4);
        b.push(b"abcdefghij\nxy");
        assert_eq!(lines(&mut b), ["abcd", "efgh", "ij"]);
        b.push(b"z\n");
        assert_eq!(lines(&mut b), ["xyz"]);
        // A line of exactly max bytes is whole, its LF with it; max bytes
        // without one may still get it.
        b.push(b"abcd\nabcd");
        assert_eq!(lines(&mut b), ["abcd"]);
        assert_eq!(b.held(), b"abcd");
        b.push(b"e");
        assert_eq!(lines(&mut b), ["abcd"]);
        assert_eq!(b.held(), b"e");
    }

    #[test]
    fn reading_into_space_keeps_what_is_held() {
        let mut b = LineBuffer::new(1 << 20);
        for chunk in [&b"ab"[..], b"c\nde", b"f\n"] {
            let room = b.space(chunk.len());
            room[..chunk.len()].copy_from_slice(chunk);
            b.filled(chunk.len());
        }
        assert_eq!(lines(&mut b), ["abc", "def"]);
        let range = {
            b.push(b"gh\n");
            b.next_range().unwrap()
        };
        assert_eq!(b.get(range), b"gh");
    }

    #[test]
    fn no_input_loses_or_invents_a_byte() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..500 {
            let mut b = LineBuffer::new(1 + (seed % 7) as usize);
            let mut input = Vec::new();
            let mut got = Vec::new();
            for _ in 0..(seed % 30) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let chunk: Vec<u8> = (0..seed % 9)
                    .map(|i| if (seed >> i) & 3 == 0 { b'\n' } else { b'x' })
                    .collect();
                input.extend_from_slice(&chunk);
                b.push(&chunk);
                while let Some(range) = b.next_range() {
                    got.push(b.get(range).to_vec());
                }
            }
            b.finish();
            while let Some(line) = b.next_line() {
                got.push(line.to_vec());
            }
            // Each line is at most max, and the lines with LFs where the
            // input had them give the input back.
            let max = b.max;
            assert!(got.iter().all(|l| l.len() <= max));
            let mut joined = Vec::new();
            let mut rest: &[u8] = &input;
            for line in &got {
                joined.extend_from_slice(line);
                rest = &rest[line.len()..];
                if rest.first() == Some(&b'\n') {
                    joined.push(b'\n');
                    rest = &rest[1..];
                }
            }
            assert_eq!(joined, input);
        }
    }
}
