//! Cuts input into the pieces that become stamped lines: at each LF, and
//! wherever a line reaches the longest allowed; the last piece of a chunk may
//! be the open start of a line whose end has not arrived yet.
//!
//! A line that reaches the limit is split only once the byte after it is
//! known not to be its LF (an LF right at the limit still ends the line). That
//! byte may lie beyond the chunk being cut, so a chunk carries it along: cut
//! from the same input, a chunk gives the same pieces whoever cuts it (the
//! planner measuring it, the writer writing it). A line that filled an
//! earlier chunk to the limit gets its split as a piece of no input bytes.

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

/// Input bytes to cut, and the byte after them if it has been read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk<'a> {
    pub data: &'a [u8],
    pub next: Option<u8>,
}

impl<'a> Chunk<'a> {
    /// The first `len` bytes of `input`, followed by the rest of it.
    pub fn head(input: &'a [u8], len: usize) -> Chunk<'a> {
        Chunk {
            data: &input[..len],
            next: input.get(len).copied(),
        }
    }

    /// All of `input`, with nothing known after it.
    pub fn whole(input: &'a [u8]) -> Chunk<'a> {
        Chunk::head(input, input.len())
    }
}

pub struct Pieces<'a> {
    data: &'a [u8],
    next: Option<u8>,
    pos: usize,
    col: usize,
    max_line: usize,
}

impl<'a> Pieces<'a> {
    /// `col`: text bytes of the line already written before the chunk;
    /// `max_line`: the longest text of one line (at least 1).
    pub fn new(chunk: Chunk<'a>, col: usize, max_line: usize) -> Pieces<'a> {
        let max_line = max_line.max(1);
        Pieces {
            data: chunk.data,
            next: chunk.next,
            pos: 0,
            col: col.min(max_line),
            max_line,
        }
    }

    /// Text bytes of the open line after the pieces taken so far.
    pub fn col(&self) -> usize {
        self.col
    }

    /// Goes on from `pos`, a line start at or after where it is, between
    /// lines (no line left open).
    pub fn skip_to(&mut self, pos: usize) {
        if self.col == 0 && pos > self.pos {
            self.pos = pos.min(self.data.len());
        }
    }
}

impl Iterator for Pieces<'_> {
    type Item = Piece;

    fn next(&mut self) -> Option<Piece> {
        let len = self.data.len();
        let room = self.max_line - self.col;
        let text_follows = self.next.is_some_and(|b| b != b'\n');
        if self.pos >= len && !(room == 0 && text_follows) {
            return None;
        }
        let start = self.pos;
        let starts_line = self.col == 0;
        // Look one byte past the room: an LF right at the limit still ends the line.
        let window = &self.data[start..len.min(start + room + 1)];
        let (end, ends) = match memchr::memchr(b'\n', window) {
            Some(i) => (start + i, End::Newline),
            None if len - start > room => (start + room, End::Split),
            None if len - start == room && text_follows => (len, End::Split),
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
        cut_chunk(Chunk::whole(data), col, max)
    }

    fn cut_chunk(chunk: Chunk, col: usize, max: usize) -> Vec<(String, End, bool)> {
        let data = chunk.data;
        Pieces::new(chunk, col, max)
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
    fn a_chunk_cut_at_the_limit_is_cut_as_the_whole_input_is() {
        let input = b"abcdefg\n";
        let whole = cut(input, 0, 3);
        for len in 0..=input.len() {
            let mut pieces = cut_chunk(Chunk::head(input, len), 0, 3);
            let col = Pieces::new(Chunk::head(input, len), 0, 3)
                .last()
                .map_or(0, |p| if p.ends_line() { 0 } else { p.end - p.start });
            let rest = Chunk::head(&input[len..], input.len() - len);
            pieces.extend(cut_chunk(rest, col, 3));
            // Pieces an Open end left apart join into the whole's piece.
            let mut joined: Vec<(String, End, bool)> = Vec::new();
            for (text, ends, starts) in pieces {
                match joined.last_mut() {
                    Some(last) if last.1 == End::Open => {
                        last.0.push_str(&text);
                        last.1 = ends;
                    }
                    _ => joined.push((text, ends, starts)),
                }
            }
            assert_eq!(joined, whole, "cut at {len}");
        }
    }

    #[test]
    fn a_line_left_at_the_limit_is_split_by_the_next_chunk_even_an_empty_one() {
        // The text after it is not read yet: the line stays open.
        assert_eq!(cut_chunk(Chunk::whole(b""), 3, 3), vec![]);
        // It is read but belongs to the next chunk: the split alone, no input taken.
        let split = Pieces::new(Chunk::head(b"d\n", 0), 3, 3).collect::<Vec<_>>();
        assert_eq!(split.len(), 1);
        assert_eq!(
            (split[0].ends, split[0].raw_end(), split[0].out_len()),
            (End::Split, 0, 1)
        );
        // An LF next ends the line itself: nothing to do before it.
        assert_eq!(cut_chunk(Chunk::head(b"\n", 0), 3, 3), vec![]);
        // Text that fills the limit with more text after it is split at once.
        assert_eq!(
            cut_chunk(Chunk::head(b"abcd", 3), 0, 3),
            vec![("abc".into(), End::Split, true)]
        );
        assert_eq!(
            cut_chunk(Chunk::head(b"abc\n", 3), 0, 3),
            vec![("abc".into(), End::Open, true)]
        );
    }

    #[test]
    fn sizes() {
        let p: Vec<Piece> = Pieces::new(Chunk::whole(b"ab\ncd"), 0, 100).collect();
        assert_eq!(p[0].out_len(), (PREFIX_LEN + 3) as u64);
        assert_eq!(p[0].raw_end(), 3);
        assert_eq!(p[1].out_len(), (PREFIX_LEN + 2) as u64);
        assert_eq!(p[1].raw_end(), 5);
    }
}
