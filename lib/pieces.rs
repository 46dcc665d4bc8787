//! Cuts input into the pieces that become stamped lines: at each LF, and
//! wherever a line reaches the longest allowed; the last piece of a chunk may
//! be the open start of a line whose end has not arrived yet.

use crate::logdir::PREFIX_LEN;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The input's LF ends the line.
    Newline,
    /// The line reached the longest allowed; an LF is added and the rest
    /// goes on in a new stamped line.
    Split,
    /// The chunk ended inside the line.
    Open,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    /// The text, `data[start..end]`, without its LF.
    pub start: usize,
    pub end: usize,
    pub ends: End,
    /// The piece begins a line, so it gets a stamp.
    pub starts_line: bool,
}

impl Piece {
    /// Input bytes taken: the text and its LF.
    pub fn raw_end(&self) -> usize {
        self.end + usize::from(self.ends == End::Newline)
    }

    /// Bytes written for it: stamp and space, text, LF.
    pub fn out_len(&self) -> u64 {
        let prefix = if self.starts_line { PREFIX_LEN } else { 0 };
        (prefix + (self.end - self.start) + usize::from(self.ends != End::Open)) as u64
    }

    pub fn ends_line(&self) -> bool {
        self.ends != End::Open
    }
}

pub struct Pieces<'a> {
    data: &'a [u8],
    pos: usize,
    col: usize,
    max_line: usize,
}

impl<'a> Pieces<'a> {
    /// `col`: text bytes of the line already written before `data`;
    /// `max_line`: the longest text of one line (at least 1).
    pub fn new(data: &'a [u8], col: usize, max_line: usize) -> Pieces<'a> {
        let max_line = max_line.max(1);
        Pieces {
            data,
            pos: 0,
            col: col.min(max_line),
            max_line,
        }
    }

    /// Text bytes of the open line after the pieces taken so far.
    pub fn col(&self) -> usize {
        self.col
    }
}

impl Iterator for Pieces<'_> {
    type Item = Piece;

    fn next(&mut self) -> Option<Piece> {
        let len = self.data.len();
        if self.pos >= len {
            return None;
        }
        let start = self.pos;
        let starts_line = self.col == 0;
        let room = self.max_line - self.col;
        // Look one byte past the room: an LF right at the limit still ends the line.
        let window = &self.data[start..len.min(start + room + 1)];
        let (end, ends) = match memchr::memchr(b'\n', window) {
            Some(i) => (start + i, End::Newline),
            None if len - start > room => (start + room, End::Split),
            None => (len, End::Open),
        };
        let piece = Piece {
            start,
            end,
            ends,
            starts_line,
        };
        self.pos = piece.raw_end();
        self.col = if ends == End::Open {
            self.col + (end - start)
        } else {
            0
        };
        Some(piece)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(data: &[u8], col: usize, max: usize) -> Vec<(String, End, bool)> {
        Pieces::new(data, col, max)
            .map(|p| {
                (
                    String::from_utf8_lossy(&data[p.start..p.end]).into_owned(),
                    p.ends,
                    p.starts_line,
                )
            })
            .collect()
    }

    #[test]
    fn lines_and_open_tail() {
        assert_eq!(
            cut(b"ab\ncd\nef", 0, 100),
            vec![
                ("ab".into(), End::Newline, true),
                ("cd".into(), End::Newline, true),
                ("ef".into(), End::Open, true),
            ]
        );
        // Continuing a line begun in an earlier chunk: no stamp.
        assert_eq!(
            cut(b"xy\n", 3, 100),
            vec![("xy".into(), End::Newline, false)]
        );
    }

    #[test]
    fn long_lines_split_at_the_limit() {
        assert_eq!(
            cut(b"abcdefg\n", 0, 3),
            vec![
                ("abc".into(), End::Split, true),
                ("def".into(), End::Split, true),
                ("g".into(), End::Newline, true),
            ]
        );
        // Exactly the limit and its LF: one line.
        assert_eq!(
            cut(b"abc\n", 0, 3),
            vec![("abc".into(), End::Newline, true)]
        );
        // A line already at the limit: the next byte starts a new one.
        assert_eq!(
            cut(b"d\n", 3, 3),
            vec![
                ("".into(), End::Split, false),
                ("d".into(), End::Newline, true)
            ]
        );
        assert_eq!(cut(b"\n", 3, 3), vec![("".into(), End::Newline, false)]);
    }

    #[test]
    fn sizes() {
        let p: Vec<Piece> = Pieces::new(b"ab\ncd", 0, 100).collect();
        assert_eq!(p[0].out_len(), (PREFIX_LEN + 3) as u64);
        assert_eq!(p[0].raw_end(), 3);
        assert_eq!(p[1].out_len(), (PREFIX_LEN + 2) as u64);
        assert_eq!(p[1].raw_end(), 5);
    }
}
