//! Lines as the tests make, send and compare them.

use std::fs;
use std::path::Path;

/// Compares lines, and on a difference says where, briefly.
pub fn assert_same_lines(got: &[Vec<u8>], want: &[Vec<u8>], what: &str) {
    if got == want {
        return;
    }
    let first = got
        .iter()
        .zip(want)
        .position(|(g, w)| g != w)
        .unwrap_or(got.len().min(want.len()));
    let show = |v: &[Vec<u8>]| {
        v.get(first)
            .map(|l| String::from_utf8_lossy(l).into_owned())
    };
    panic!(
        "{what}: {} lines, {} expected; first difference at line {first}: got {:?}, expected {:?}",
        got.len(),
        want.len(),
        show(got),
        show(want)
    );
}

/// `count` distinct lines, some long, none empty.
pub fn numbered_lines(count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| format!("line {i:08} {}", "x".repeat(i % 97)).into_bytes())
        .collect()
}

pub fn joined(lines: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in lines {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out
}

/// The lines of a file, without their LFs.
pub fn file_lines(path: &Path) -> Vec<Vec<u8>> {
    let bytes = fs::read(path).unwrap_or_default();
    let mut lines: Vec<Vec<u8>> = bytes.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    if lines.last().is_some_and(Vec::is_empty) {
        lines.pop();
    }
    lines
}

/// `got` is `want` in order, except that it may go back to an earlier line
/// and repeat from there (a restart after kill -9, from the saved cursor):
/// nothing lost, nothing new out of order. Returns how many lines came
/// again.
pub fn check_resends(got: &[Vec<u8>], want: &[Vec<u8>]) -> usize {
    let index: std::collections::HashMap<&[u8], usize> = want
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_slice(), i))
        .collect();
    let mut next = 0;
    let mut repeated = 0;
    for line in got {
        let i = *index
            .get(line.as_slice())
            .unwrap_or_else(|| panic!("not in the log: {}", String::from_utf8_lossy(line)));
        assert!(i <= next, "line {i} came before line {next}: lost");
        if i < next {
            repeated += 1;
        }
        next = next.max(i + 1);
    }
    assert_eq!(next, want.len(), "lines missing at the end");
    repeated
}
