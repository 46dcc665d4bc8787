//! Unsigned integers as decimal text, without the formatting machinery:
//! the numbers in reader-line fields, syslog headers, frame lengths and
//! timestamps are written on hot paths, once or more per message.

/// Room for any `u64` in decimal.
pub const MAX_LEN: usize = 20;

/// `n` in decimal, into `buf`.
pub fn decimal(n: u64, buf: &mut [u8; MAX_LEN]) -> &[u8] {
    let width = n.checked_ilog10().map_or(1, |l| l as usize + 1);
    let digits = &mut buf[..width];
    zero_padded(n, digits);
    digits
}

/// Appends `n` in decimal to `out`.
pub fn write_decimal(n: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(decimal(n, &mut [0; MAX_LEN]));
}

/// Writes `n` in decimal across all of `out`, zero-padded on the left;
/// digits that do not fit are cut off on the left.
pub fn zero_padded(mut n: u64, out: &mut [u8]) {
    for d in out.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_u64_fits_without_leading_zeros() {
        let mut buf = [0u8; MAX_LEN];
        for (n, text) in [
            (0, "0"),
            (9, "9"),
            (10, "10"),
            (514, "514"),
            (u64::MAX, "18446744073709551615"),
        ] {
            assert_eq!(decimal(n, &mut buf), text.as_bytes());
            let mut out = b"x".to_vec();
            write_decimal(n, &mut out);
            assert_eq!(out, format!("x{text}").as_bytes());
        }
    }

    #[test]
    fn zero_padded_fills_its_width_and_keeps_the_low_digits() {
        let mut out = [0u8; 6];
        zero_padded(789_012, &mut out);
        assert_eq!(&out, b"789012");
        zero_padded(42, &mut out);
        assert_eq!(&out, b"000042");
        let mut two = [0u8; 2];
        zero_padded(2024, &mut two);
        assert_eq!(&two, b"24");
    }
}
