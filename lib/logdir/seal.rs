//! Sealed log directories: forward-secure seals over the exact bytes of a
//! log directory's files. The pure core: key evolution, the running hash of
//! a file, the seal record and its strict parser, and the verifier. No I/O
//! beyond byte slices; see logseal(7) for the threat model and design.
//!
//! Keys. A 32-byte seed is the root of a binary tree of depth [`DEPTH`]:
//! `child(node, b) = HMAC-SHA256(node, "rill-seal-1 child " + b)`. Leaf `i`
//! is the key of seal number `i` and of no other. The writer keeps only the
//! frontier (the leaf for the next seal and the right siblings along its
//! path: at most `DEPTH + 1` nodes), from which no earlier leaf can be
//! derived. Advancing costs 2 HMACs amortised, `2 * DEPTH` at worst; the
//! verifier seeks to any leaf from the seed in `2 * DEPTH` HMACs.
//!
//! Seal record: one line of ASCII, fields separated by one space:
//!
//! ```text
//! rill-seal-2 SEQ KIND AT FILE FIRST LINES BYTES HASH PREV MAC
//! ```
//!
//! `SEQ`, `LINES`, `BYTES`: 16 lowercase hex digits. `KIND`: `mid` (the
//! file is still being written, `FILE` is `current`) or `end` (the file is
//! finished and becomes archive `FILE`, a TAI64N label `@` + 24 hex).
//! `AT`: label of when the seal was made. `FIRST`: label of the oldest
//! sealed archive the directory keeps, or `-` before the first rotation.
//! `HASH`: the chain of the file's spans to `BYTES` (see [`Span`]: each
//! seal's new bytes tagged under a key from its leaf); `[0, BYTES)` hold
//! `LINES` line feeds. `PREV`: SHA-256 of the previous record's line (its
//! LF included), 64 zeros for seal 0. `MAC`: HMAC-SHA256 under leaf `SEQ` of
//! every byte before it (the space before `MAC` included). Hex is
//! lowercase; every field is checked to be in its one canonical form.
//!
//! Where they live (for the wiring): `seal/current` holds the records of
//! `current`; at rotation, after its `end` record, it is renamed to
//! `seal/@<stamp>` beside the archive, and deleted with it at the cap.

use std::fmt;

use ring::{aead, digest, hmac};

use crate::error::Usage;
use crate::format::stamp::{LABEL_LEN, Stamp};

/// The subdirectory of a log directory that holds its seal files:
/// `current` and one `@STAMP` per sealed archive.
pub const SEAL_DIR: &str = "seal";

/// The archive stamp of a seal file's name, `@` + 24 lowercase hex digits
/// in canonical form; None for any other name.
pub fn seal_file_stamp(name: &[u8]) -> Option<Stamp> {
    parse_label(name)
}

/// Depth of the key tree: 2^48 seals, 89 years at 100,000 seals a second.
pub const DEPTH: u32 = 48;
/// The number of seals one seed can make.
pub const MAX_SEALS: u64 = 1 << DEPTH;

const TAG: &[u8] = b"rill-seal-2";
const KEY_STATE_TAG: &[u8] = b"rill-seal-key-1";
const VERIFY_TAG: &str = "rill-seal-verify-1";
const HASH_LEN: usize = 32;

type Node = [u8; HASH_LEN];

/// The secret root of one directory's key tree. Kept off the machine: with
/// it, any seal can be checked and made.
#[derive(Clone, PartialEq, Eq)]
pub struct Seed(Node);

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Seed(..)")
    }
}

impl Seed {
    pub fn from_bytes(bytes: [u8; HASH_LEN]) -> Seed {
        Seed(bytes)
    }

    /// The verification key as one line a person can copy:
    /// `rill-seal-verify-1:` + 64 hex digits + `:` + 8 hex check digits.
    pub fn verification_line(&self) -> String {
        format!(
            "{VERIFY_TAG}:{}:{}",
            hex(&self.0),
            hex(&check_digits(&self.0))
        )
    }

    /// Parses [`Seed::verification_line`]'s output, surrounding white space
    /// allowed; a mistyped digit fails the check.
    pub fn parse_verification_line(line: &str) -> Result<Seed, Usage> {
        let mut parts = line.trim().split(':');
        let (Some(tag), Some(seed), Some(check), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Usage(format!("not {VERIFY_TAG}:SEED:CHECK")));
        };
        if tag != VERIFY_TAG {
            return Err(Usage(format!("does not begin with {VERIFY_TAG}")));
        }
        let seed: Node =
            parse_hex_array(seed.as_bytes()).ok_or("the seed is not 64 lowercase hex digits")?;
        let check: [u8; 4] =
            parse_hex_array(check.as_bytes()).ok_or("the check is not 8 lowercase hex digits")?;
        if check != check_digits(&seed) {
            return Err("the check digits do not match the seed (a typing error?)".into());
        }
        Ok(Seed(seed))
    }
}

fn check_digits(seed: &Node) -> [u8; 4] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(b"rill-seal-1 check ");
    ctx.update(seed);
    let d = ctx.finish();
    let mut out = [0u8; 4];
    out.copy_from_slice(&d.as_ref()[..4]);
    out
}

fn child(node: &Node, right: bool) -> Node {
    let key = hmac::Key::new(hmac::HMAC_SHA256, node);
    let label: &[u8] = if right {
        b"rill-seal-1 child 1"
    } else {
        b"rill-seal-1 child 0"
    };
    let mut out = [0u8; HASH_LEN];
    out.copy_from_slice(hmac::sign(&key, label).as_ref());
    out
}

fn wipe(node: &mut Node) {
    node.fill(0);
    std::hint::black_box(node);
}

/// The writer's evolving key: the leaf for seal `index` and the right
/// siblings along its path, deepest last. Earlier leaves are gone.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyChain {
    index: u64,
    /// (height, node); heights strictly decrease to the leaf (height 0).
    stack: Vec<(u32, Node)>,
}

impl fmt::Debug for KeyChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyChain {{ index: {}, .. }}", self.index)
    }
}

impl Drop for KeyChain {
    fn drop(&mut self) {
        for (_, node) in &mut self.stack {
            wipe(node);
        }
    }
}

impl KeyChain {
    /// The chain positioned at seal `index`: 2 * DEPTH HMACs.
    pub fn at(seed: &Seed, index: u64) -> Option<KeyChain> {
        if index >= MAX_SEALS {
            return None;
        }
        let mut stack = Vec::with_capacity(DEPTH as usize + 1);
        let mut node = seed.0;
        for height in (0..DEPTH).rev() {
            let mut left = child(&node, false);
            let mut right = child(&node, true);
            wipe(&mut node);
            if index >> height & 1 == 0 {
                stack.push((height, right));
                node = left;
                wipe(&mut right);
            } else {
                node = right;
                wipe(&mut left);
            }
        }
        stack.push((0, node));
        Some(KeyChain { index, stack })
    }

    /// The number of the seal the current key makes.
    pub fn index(&self) -> u64 {
        self.index
    }

    fn leaf(&self) -> &Node {
        // The stack always ends in the leaf: `at` and `advance` push it last.
        &self.stack[self.stack.len() - 1].1
    }

    fn mac_key(&self) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, self.leaf())
    }

    /// The key of the current seal's span.
    fn span_key(&self) -> SpanKey {
        let mut key = [0u8; HASH_LEN];
        key.copy_from_slice(hmac::sign(&self.mac_key(), SPAN_TAG).as_ref());
        SpanKey(key)
    }

    /// Destroys the current leaf and moves to the next seal's.
    pub fn advance(&mut self) -> Result<(), SealError> {
        if self.index + 1 >= MAX_SEALS {
            return Err(SealError::Exhausted);
        }
        if let Some((_, mut leaf)) = self.stack.pop() {
            wipe(&mut leaf);
        }
        // The next subtree to the right: the deepest pending sibling.
        let Some((mut height, mut node)) = self.stack.pop() else {
            return Err(SealError::Exhausted);
        };
        while height > 0 {
            let left = child(&node, false);
            let right = child(&node, true);
            wipe(&mut node);
            height -= 1;
            self.stack.push((height, right));
            node = left;
        }
        self.stack.push((0, node));
        self.index += 1;
        Ok(())
    }

    /// The state to store on the machine, one line:
    /// `rill-seal-key-1 INDEX` then `HEIGHT:NODE` per node (height as two
    /// hex digits), then the SHA-256 of all before it, so that a torn write
    /// is recognised rather than taken for a key.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.stack.len() * 68 + 65);
        out.extend_from_slice(KEY_STATE_TAG);
        out.push(b' ');
        out.extend_from_slice(hex(&self.index.to_be_bytes()).as_bytes());
        for (height, node) in &self.stack {
            out.push(b' ');
            out.extend_from_slice(hex(&[*height as u8]).as_bytes());
            out.push(b':');
            out.extend_from_slice(hex(node).as_bytes());
        }
        out.push(b' ');
        let sum = digest::digest(&digest::SHA256, &out);
        out.extend_from_slice(hex(sum.as_ref()).as_bytes());
        out.push(b'\n');
        out
    }

    /// Parses [`KeyChain::encode`]'s output strictly: the checksum, and the
    /// shape of the frontier against the index.
    pub fn decode(bytes: &[u8]) -> Result<KeyChain, String> {
        let body = bytes.strip_suffix(b"\n").ok_or("no line feed at the end")?;
        let sum_at = body
            .len()
            .checked_sub(64)
            .ok_or("shorter than its checksum")?;
        let (covered, sum) = body.split_at(sum_at);
        let sum: Node = parse_hex_array(sum).ok_or("bad checksum digits")?;
        if digest::digest(&digest::SHA256, covered).as_ref() != sum {
            return Err("the checksum does not match (a torn write?)".into());
        }
        let covered = covered
            .strip_suffix(b" ")
            .ok_or("no space before the checksum")?;
        let mut fields = covered.split(|&c| c == b' ');
        if fields.next() != Some(KEY_STATE_TAG) {
            return Err("not a rill-seal-key-1 line".into());
        }
        let index = fields.next().and_then(parse_hex_u64).ok_or("bad index")?;
        if index >= MAX_SEALS {
            return Err("index beyond the key tree".into());
        }
        let mut stack = Vec::new();
        for field in fields {
            if field.len() != 67 || field[2] != b':' {
                return Err("bad node field".into());
            }
            let [height]: [u8; 1] = parse_hex_array(&field[..2]).ok_or("bad node height")?;
            let node: Node = parse_hex_array(&field[3..]).ok_or("bad node digits")?;
            stack.push((u32::from(height), node));
        }
        // Right siblings exactly where the leaf's path goes left, then the leaf.
        let expected: Vec<u32> = (1..DEPTH)
            .rev()
            .filter(|h| index >> h & 1 == 0)
            .chain(std::iter::once(0).filter(|_| index & 1 == 0))
            .chain(std::iter::once(0))
            .collect();
        let heights: Vec<u32> = stack.iter().map(|(h, _)| *h).collect();
        if heights != expected {
            return Err("the nodes do not fit the index".into());
        }
        Ok(KeyChain { index, stack })
    }
}

/// Why the writer cannot seal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealError {
    /// All 2^48 keys of the seed are used: a new seed is needed.
    Exhausted,
    /// The record asked for breaks the rules the verifier checks.
    Invalid(&'static str),
}

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SealError::Exhausted => f.write_str("the sealing key's 2^48 seals are used up"),
            SealError::Invalid(why) => f.write_str(why),
        }
    }
}

/// What a seal covers of one file: its first `bytes` bytes, holding `lines`
/// line feeds, with `hash` the chain of its spans' tags (see [`Span`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cover {
    pub bytes: u64,
    pub lines: u64,
    pub hash: [u8; HASH_LEN],
}

impl Cover {
    /// The cover of a file's first byte: nothing, hash all zeros.
    pub const START: Cover = Cover {
        bytes: 0,
        lines: 0,
        hash: [0; HASH_LEN],
    };
}

const SPAN_TAG: &[u8] = b"rill-seal-2 span";
/// Bytes of a span tagged at once, the last piece of a span shorter: small
/// enough to stay in the CPU's cache while it is tagged.
pub const PIECE: usize = 64 * 1024;

/// The key that tags the span of one seal, from that seal's leaf; gone
/// with the leaf once the seal is made.
pub struct SpanKey(Node);

impl fmt::Debug for SpanKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SpanKey(..)")
    }
}

impl Drop for SpanKey {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

/// The span keys of seals from one number on, as the writer's key moves
/// (only span keys: no seal can be made with them).
#[derive(Debug)]
pub struct SpanKeys(KeyChain);

impl SpanKeys {
    /// The number of the seal whose span key comes next.
    pub fn seq(&self) -> u64 {
        self.0.index()
    }

    /// The span key of seal [`SpanKeys::seq`].
    pub fn key(&self) -> SpanKey {
        self.0.span_key()
    }

    /// On to the next seal's.
    pub fn advance(&mut self) -> Result<(), SealError> {
        self.0.advance()
    }
}

/// The bytes of one file from one cover to the next (a seal's span),
/// tagged under that seal's [`SpanKey`]: cut into pieces of [`PIECE`]
/// bytes, piece `i` encrypted with AES-256-GCM (nonce `i`, big-endian)
/// and only its tag kept. The new cover's hash is
/// `SHA-256("rill-seal-2 span" || HASH || BYTES || tags || BYTES')`, the
/// old cover's hash and length then the new length as 8 bytes big-endian;
/// a span of no bytes leaves the cover as it was.
pub struct Span {
    key: aead::LessSafeKey,
    from: Cover,
    bytes: u64,
    lines: u64,
    piece: Vec<u8>,
    pieces: u64,
    tags: digest::Context,
}

impl Span {
    /// A span from `from`, under `key`.
    pub fn new(key: &SpanKey, from: Cover) -> Span {
        // AES-256 takes any 32-byte key.
        let key =
            aead::UnboundKey::new(&aead::AES_256_GCM, &key.0).unwrap_or_else(|_| unreachable!());
        let mut tags = digest::Context::new(&digest::SHA256);
        tags.update(SPAN_TAG);
        tags.update(&from.hash);
        tags.update(&from.bytes.to_be_bytes());
        Span {
            key: aead::LessSafeKey::new(key),
            from,
            bytes: from.bytes,
            lines: from.lines,
            piece: Vec::new(),
            pieces: 0,
            tags,
        }
    }

    /// Where the file stands: bytes from its start.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.bytes += data.len() as u64;
        self.lines += memchr::memchr_iter(b'\n', data).count() as u64;
        while !data.is_empty() {
            if self.piece.capacity() == 0 {
                self.piece.reserve_exact(PIECE);
            }
            let take = data.len().min(PIECE - self.piece.len());
            self.piece.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.piece.len() == PIECE {
                self.tag_piece();
            }
        }
    }

    /// As [`Span::update`], but whole pieces at the start of `data` are
    /// tagged where they are (and overwritten), not copied.
    pub fn update_mut(&mut self, data: &mut [u8]) {
        if !self.piece.is_empty() {
            return self.update(data);
        }
        let whole = data.len() - data.len() % PIECE;
        let (pieces, rest) = data.split_at_mut(whole);
        self.bytes += pieces.len() as u64;
        self.lines += memchr::memchr_iter(b'\n', pieces).count() as u64;
        for piece in pieces.chunks_exact_mut(PIECE) {
            self.tag(piece);
        }
        self.update(rest);
    }

    fn tag_piece(&mut self) {
        let mut piece = std::mem::take(&mut self.piece);
        self.tag(&mut piece);
        piece.clear();
        self.piece = piece;
    }

    /// Tags the next piece, overwriting it.
    fn tag(&mut self, piece: &mut [u8]) {
        let mut nonce = [0u8; aead::NONCE_LEN];
        nonce[aead::NONCE_LEN - 8..].copy_from_slice(&self.pieces.to_be_bytes());
        // A key's nonces are its span's piece numbers, each used once; the
        // ciphertext is thrown away. GCM refuses only pieces over 64 GB.
        let tag = self
            .key
            .seal_in_place_separate_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::empty(),
                piece,
            )
            .unwrap_or_else(|_| unreachable!());
        self.tags.update(tag.as_ref());
        self.pieces += 1;
    }

    /// The cover at the end of the span.
    pub fn finish(mut self) -> Cover {
        if self.bytes == self.from.bytes {
            return self.from;
        }
        if !self.piece.is_empty() {
            self.tag_piece();
        }
        self.tags.update(&self.bytes.to_be_bytes());
        let mut hash = [0u8; HASH_LEN];
        hash.copy_from_slice(self.tags.finish().as_ref());
        Cover {
            bytes: self.bytes,
            lines: self.lines,
            hash,
        }
    }
}

/// Which file a record seals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sealed {
    /// `current`, still being written (`mid`).
    Current,
    /// `current`, finished, to be renamed to the archive of this stamp (`end`).
    Archive(Stamp),
}

/// One seal record, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub seq: u64,
    pub file: Sealed,
    pub at: Stamp,
    pub first: Option<Stamp>,
    pub cover: Cover,
    pub prev: [u8; HASH_LEN],
    pub mac: [u8; HASH_LEN],
}

/// Length of a record's line, LF included, for the two kinds of file field.
const fn record_len(file_len: usize) -> usize {
    TAG.len()
        + 1
        + 16
        + 1
        + 3
        + 1
        + LABEL_LEN
        + 1
        + file_len
        + 1
        + LABEL_LEN
        + 1
        + 16
        + 1
        + 16
        + 1
        + 64
        + 1
        + 64
        + 1
        + 64
        + 1
}
/// The longest record line: the parser looks no further for its end.
pub const MAX_RECORD_LEN: usize = record_len(LABEL_LEN);

impl Record {
    /// The line without its MAC: every byte the MAC covers.
    fn body(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAX_RECORD_LEN);
        out.extend_from_slice(TAG);
        out.push(b' ');
        out.extend_from_slice(hex(&self.seq.to_be_bytes()).as_bytes());
        let (kind, file) = match self.file {
            Sealed::Current => (&b"mid"[..], b"current".to_vec()),
            Sealed::Archive(stamp) => (&b"end"[..], stamp.label().to_vec()),
        };
        out.push(b' ');
        out.extend_from_slice(kind);
        out.push(b' ');
        out.extend_from_slice(&self.at.label());
        out.push(b' ');
        out.extend_from_slice(&file);
        out.push(b' ');
        match self.first {
            Some(stamp) => out.extend_from_slice(&stamp.label()),
            None => out.push(b'-'),
        }
        for number in [self.cover.lines, self.cover.bytes] {
            out.push(b' ');
            out.extend_from_slice(hex(&number.to_be_bytes()).as_bytes());
        }
        out.push(b' ');
        out.extend_from_slice(hex(&self.cover.hash).as_bytes());
        out.push(b' ');
        out.extend_from_slice(hex(&self.prev).as_bytes());
        out.push(b' ');
        out
    }

    /// The whole line, LF included.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.body();
        out.extend_from_slice(hex(&self.mac).as_bytes());
        out.push(b'\n');
        out
    }

    /// Parses one line (its LF included) strictly: the line must be exactly
    /// what [`Record::encode`] makes of the result. Checks no MAC.
    pub fn parse(line: &[u8]) -> Option<Record> {
        let body = line.strip_suffix(b"\n")?;
        let mut fields = body.split(|&c| c == b' ');
        if fields.next()? != TAG {
            return None;
        }
        let seq = parse_hex_u64(fields.next()?)?;
        let kind = fields.next()?;
        let at = parse_label(fields.next()?)?;
        let file_field = fields.next()?;
        let file = match kind {
            b"mid" if file_field == b"current" => Sealed::Current,
            b"end" => Sealed::Archive(parse_label(file_field)?),
            _ => return None,
        };
        let first = match fields.next()? {
            b"-" => None,
            label => Some(parse_label(label)?),
        };
        let lines = parse_hex_u64(fields.next()?)?;
        let bytes = parse_hex_u64(fields.next()?)?;
        let hash = parse_hex_array(fields.next()?)?;
        let prev = parse_hex_array(fields.next()?)?;
        let mac = parse_hex_array(fields.next()?)?;
        if fields.next().is_some() {
            return None;
        }
        let record = Record {
            seq,
            file,
            at,
            first,
            cover: Cover { bytes, lines, hash },
            prev,
            mac,
        };
        // Canonical form only: one spelling per record.
        (record.encode() == line).then_some(record)
    }

    fn mac_valid(&self, keys: &KeyChain) -> bool {
        hmac::verify(&keys.mac_key(), &self.body(), &self.mac).is_ok()
    }
}

/// The writer's side: makes each seal with the next key, chained to the
/// previous seal, and destroys the key it used.
#[derive(Debug)]
pub struct Sealer {
    keys: KeyChain,
    prev: [u8; HASH_LEN],
    last: Option<Record>,
}

impl Sealer {
    /// A sealer that has made no seal yet.
    pub fn new(seed: &Seed) -> Sealer {
        Sealer {
            // Index 0 is always below MAX_SEALS.
            keys: KeyChain::at(seed, 0).unwrap_or_else(|| unreachable!()),
            prev: [0; HASH_LEN],
            last: None,
        }
    }

    /// A sealer resumed from the stored key state and the last record
    /// written (the record line, if any). A key state not past the last
    /// record (a crash between writing the record and storing the advanced
    /// key) is advanced past it.
    pub fn resume(mut keys: KeyChain, last_line: Option<&[u8]>) -> Result<Sealer, SealError> {
        let last = match last_line {
            None => None,
            Some(line) => Some(
                Record::parse(line)
                    .ok_or(SealError::Invalid("the last seal record is malformed"))?,
            ),
        };
        let prev = match last_line {
            Some(line) => sha256(line),
            None => [0; HASH_LEN],
        };
        if let Some(record) = &last {
            if keys.index() > record.seq + 1 {
                return Err(SealError::Invalid(
                    "the key is past the seal after the last record: seals were lost",
                ));
            }
            while keys.index() <= record.seq {
                keys.advance()?;
            }
        }
        Ok(Sealer { keys, prev, last })
    }

    /// The number the next seal will have.
    pub fn next_seq(&self) -> u64 {
        self.keys.index()
    }

    /// The key that tags the span of the next seal.
    pub fn span_key(&self) -> SpanKey {
        self.keys.span_key()
    }

    /// The span keys of the next seals, for tagging spans ahead.
    pub fn span_keys(&self) -> SpanKeys {
        SpanKeys(self.keys.clone())
    }

    /// The key state to store after the record of the last seal is durable.
    pub fn key_state(&self) -> Vec<u8> {
        self.keys.encode()
    }

    /// Makes the next seal record (one line) and destroys its key. The
    /// caller writes the line out durably before it stores the key state.
    pub fn seal(
        &mut self,
        file: Sealed,
        at: Stamp,
        first: Option<Stamp>,
        cover: Cover,
    ) -> Result<Vec<u8>, SealError> {
        if let Some(last) = &self.last {
            if at < last.at {
                return Err(SealError::Invalid("a seal stamped before the last one"));
            }
            if first < last.first {
                return Err(SealError::Invalid("the first kept archive moved back"));
            }
            if last.file == Sealed::Current && cover.bytes < last.cover.bytes {
                return Err(SealError::Invalid("a seal covering less than the last"));
            }
        }
        if let Sealed::Archive(stamp) = file
            && first.is_none_or(|f| f > stamp)
        {
            return Err(SealError::Invalid("an end seal must name a kept archive"));
        }
        let mut record = Record {
            seq: self.keys.index(),
            file,
            at,
            first,
            cover,
            prev: self.prev,
            mac: [0; HASH_LEN],
        };
        let tag = hmac::sign(&self.keys.mac_key(), &record.body());
        record.mac.copy_from_slice(tag.as_ref());
        let line = record.encode();
        self.keys.advance()?;
        self.prev = sha256(&line);
        self.last = Some(record);
        Ok(line)
    }
}

/// Where and why verification failed: the first bad place found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tamper {
    /// A file of the directory, with a record number or a byte range.
    pub place: String,
    pub why: String,
}

impl fmt::Display for Tamper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.place, self.why)
    }
}

/// What a verification established about the sealed part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The last seal: its number and when it was made.
    pub last_seq: u64,
    pub last_at: Stamp,
    /// The oldest sealed archive kept (older ones were removed at the old
    /// end as the seals recorded), if any.
    pub sealed_from: Option<Stamp>,
    /// Archives checked against their seals.
    pub archives_checked: u64,
    /// Archives older than the sealed start: written before sealing began,
    /// or left past the cap; not covered by the seals, not checked.
    pub archives_not_covered: u64,
    /// A rotation was interrupted after its seal: `current` was checked as
    /// the archive it was about to become.
    pub rotation_interrupted: bool,
    /// Archives newer than the last `end` seal: rotated, their `end` seals
    /// not yet made (a writer killed, or still at work). The oldest is
    /// checked against the `mid` seals of `seal/current`; what follows
    /// those, in it and in the others, is written after the last seal.
    pub archives_unsealed: u64,
}

impl Summary {
    /// Nothing checked yet, after the last seal named.
    fn after(last_seq: u64, last_at: Stamp, sealed_from: Option<Stamp>) -> Summary {
        Summary {
            last_seq,
            last_at,
            sealed_from,
            archives_checked: 0,
            archives_not_covered: 0,
            rotation_interrupted: false,
            archives_unsealed: 0,
        }
    }
}

/// The outcome of a verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Everything is sealed and intact.
    Intact(Summary),
    /// Everything sealed is intact; `current` holds this many lines and
    /// bytes written after the last seal, which no seal vouches for.
    UnsealedTail {
        summary: Summary,
        lines: u64,
        bytes: u64,
    },
    Tampered(Tamper),
}

/// The seals of one file, in order, and the archive it became (None:
/// still `current`).
#[derive(Debug)]
struct Group {
    archive: Option<Stamp>,
    marks: Vec<Mark>,
}

/// One seal of a file: its number, its cover, and the key of its span.
#[derive(Debug)]
struct Mark {
    seq: u64,
    cover: Cover,
    key: SpanKey,
}

/// The file being checked against a group.
struct Checking {
    name: String,
    group: Group,
    next_mark: usize,
    /// The cover of the last seal passed (the file's start before any).
    at: Cover,
    /// The span to the next seal, if there is one.
    span: Option<Span>,
    /// Bytes after its last seal are written after the last seal (the
    /// file was not closed by an `end` seal), not appended.
    open_end: bool,
    /// An archive checked against its `end` seal.
    ended: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Seals,
    Files,
    Done,
}

/// The verifier: fed the seal files in order (oldest archive's first,
/// `current`'s last), then the log files in order (archives oldest first,
/// then `current`), in chunks of any size; trusts nothing it is fed.
pub struct Verifier {
    seed: Seed,
    keys: Option<KeyChain>,
    phase: Phase,
    last: Option<(Record, [u8; HASH_LEN])>,
    first_at: Option<Stamp>,
    /// A torn record at the end of this seal file, if any.
    torn: Option<String>,
    groups: std::collections::VecDeque<Group>,
    open: Group,
    failure: Option<Tamper>,
    summary: Option<Summary>,
    checking: Option<Checking>,
    tail: Option<(u64, u64)>,
    current_seen: bool,
    /// The `mid` seals of `seal/current` were taken by an archive rotated
    /// before its `end` seal.
    open_taken: bool,
}

impl Verifier {
    pub fn new(seed: &Seed) -> Verifier {
        Verifier {
            seed: seed.clone(),
            keys: None,
            phase: Phase::Seals,
            last: None,
            first_at: None,
            torn: None,
            groups: Default::default(),
            open: Group {
                archive: None,
                marks: Vec::new(),
            },
            failure: None,
            summary: None,
            checking: None,
            tail: None,
            current_seen: false,
            open_taken: false,
        }
    }

    fn fail(&mut self, place: impl Into<String>, why: impl Into<String>) {
        if self.failure.is_none() {
            self.failure = Some(Tamper {
                place: place.into(),
                why: why.into(),
            });
        }
        self.phase = Phase::Done;
    }

    /// Feeds one whole seal file. A last record cut short (no line feed, or
    /// only NUL bytes after the last line feed) is a write a crash
    /// interrupted, and allowed only at the end of the last seal file.
    pub fn seal_file(&mut self, name: &str, bytes: &[u8]) {
        if self.phase == Phase::Files {
            // Fail closed: seals after files would go unchecked.
            return self.fail(name, "a seal file given after the log files");
        }
        if self.phase != Phase::Seals {
            return;
        }
        if let Some(torn) = self.torn.take() {
            return self.fail(torn, "a seal record cut short before later seals");
        }
        let mut rest = bytes;
        let mut number = 0u64;
        while !rest.is_empty() {
            number += 1;
            let place = format!("{name}: record {number}");
            let Some(end) = memchr::memchr(b'\n', &rest[..rest.len().min(MAX_RECORD_LEN)]) else {
                if rest.iter().all(|&c| c == 0) || rest.len() < MAX_RECORD_LEN {
                    self.torn = Some(place);
                    return;
                }
                return self.fail(place, "not a seal record");
            };
            let (line, after) = rest.split_at(end + 1);
            rest = after;
            let Some(record) = Record::parse(line) else {
                if line.starts_with(b"rill-seal-1 ") {
                    return self.fail(
                        place,
                        "a seal record of rill-seal-1 (SHA-256 of the bytes), which this \
                         version does not verify",
                    );
                }
                return self.fail(place, "not a seal record");
            };
            if let Err(why) = self.take_record(record, sha256(line)) {
                return self.fail(place, why);
            }
        }
    }

    fn take_record(&mut self, record: Record, line_hash: [u8; HASH_LEN]) -> Result<(), String> {
        let keys = match self.keys.take() {
            None => KeyChain::at(&self.seed, record.seq).ok_or("number beyond the key tree")?,
            Some(keys) => {
                if keys.index() != record.seq {
                    return Err(format!(
                        "seal {} follows seal {}: seals are missing or out of order",
                        record.seq,
                        keys.index().wrapping_sub(1)
                    ));
                }
                keys
            }
        };
        if !record.mac_valid(&keys) {
            return Err(format!(
                "seal {} does not verify with this key (a wrong key, or forged)",
                record.seq
            ));
        }
        let span_key = keys.span_key();
        let mut keys = keys;
        keys.advance().map_err(|e| e.to_string())?;
        self.keys = Some(keys);
        match &self.last {
            None => {
                if record.seq == 0 && record.prev != [0; HASH_LEN] {
                    return Err("seal 0 names a seal before it".into());
                }
                self.first_at = Some(record.at);
            }
            Some((last, last_hash)) => {
                if record.prev != *last_hash {
                    return Err(format!(
                        "seal {} is not chained to seal {}",
                        record.seq, last.seq
                    ));
                }
                if record.at < last.at {
                    return Err(format!(
                        "seal {} is stamped before the seal before it",
                        record.seq
                    ));
                }
                if record.first < last.first {
                    return Err(format!(
                        "seal {} brings back an archive the seal before it had removed",
                        record.seq
                    ));
                }
                if let Some(mark) = self.open.marks.last()
                    && (record.cover.bytes < mark.cover.bytes
                        || record.cover.lines < mark.cover.lines)
                {
                    return Err(format!(
                        "seal {} covers less of current than the seal before it",
                        record.seq
                    ));
                }
            }
        }
        let newest_archive = self.groups.back().and_then(|g| g.archive);
        if let (Some(first), Some(newest)) = (record.first, newest_archive) {
            let closing = match record.file {
                Sealed::Archive(stamp) => stamp,
                Sealed::Current => newest,
            };
            if first > closing {
                return Err(format!("seal {} keeps an archive never sealed", record.seq));
            }
        }
        if let Sealed::Archive(stamp) = record.file {
            if newest_archive.is_some_and(|n| stamp <= n) {
                return Err(format!("seal {} closes archives out of order", record.seq));
            }
            if record.first.is_none_or(|f| f > stamp) {
                return Err(format!(
                    "seal {} closes an archive it does not keep",
                    record.seq
                ));
            }
        }
        self.open.marks.push(Mark {
            seq: record.seq,
            cover: record.cover,
            key: span_key,
        });
        if let Sealed::Archive(stamp) = record.file {
            let mut group = std::mem::replace(
                &mut self.open,
                Group {
                    archive: None,
                    marks: Vec::new(),
                },
            );
            group.archive = Some(stamp);
            self.groups.push_back(group);
        }
        self.last = Some((record, line_hash));
        Ok(())
    }

    /// Ends the seal files: settles which archives must be present.
    fn plan(&mut self) {
        if self.phase != Phase::Seals {
            return;
        }
        self.phase = Phase::Files;
        let Some((last, _)) = &self.last else {
            return self.fail(
                "seal files",
                "no seal record: the directory was never sealed, or its seals were removed",
            );
        };
        let (last_seq, last_at, first) = (last.seq, last.at, last.first);
        // Archives before the first kept one were removed at the old end.
        if let Some(first) = first {
            while self.groups.front().is_some_and(|g| g.archive < Some(first)) {
                self.groups.pop_front();
            }
            if self.groups.front().and_then(|g| g.archive) != Some(first) {
                return self.fail(
                    "seal files",
                    format!(
                        "seal {last_seq} keeps archive {first}, but no seal of it is left: \
                         sealed archives were removed"
                    ),
                );
            }
        } else if !self.groups.is_empty() {
            return self.fail("seal files", "closed archives without a kept one");
        }
        self.summary = Some(Summary::after(last_seq, last_at, first));
    }

    fn summary_mut(&mut self) -> &mut Summary {
        self.summary
            .get_or_insert(Summary::after(0, Stamp::ZERO, None))
    }

    /// Begins an archive, by its stamp (the name's `.s` or `.u` does not
    /// matter: a reader knows an archive by its stamp).
    pub fn begin_archive(&mut self, stamp: Stamp) {
        self.plan();
        self.end_file();
        if self.phase != Phase::Files {
            return;
        }
        if self.current_seen {
            return self.fail(stamp.to_string(), "an archive after current");
        }
        let name = stamp.to_string();
        let sealed_from = self.summary.as_ref().and_then(|s| s.sealed_from);
        let before_start = match sealed_from {
            Some(first) => stamp < first,
            None => self.first_at.is_some_and(|at| stamp < at),
        };
        if before_start {
            self.summary_mut().archives_not_covered += 1;
            return;
        }
        match self.groups.front().and_then(|g| g.archive) {
            // Newer than every end seal: rotated before its end seal. The
            // oldest holds what seal/current's mid seals cover; the rest
            // of it, and the later ones, were written after the last seal.
            None => {
                self.summary_mut().archives_unsealed += 1;
                let group = self.take_open();
                self.check(name, group, true);
            }
            Some(expected) if expected < stamp => {
                let seq = self.groups[0].marks.last().map_or(0, |m| m.seq);
                self.fail(
                    expected.to_string(),
                    format!("archive sealed by seal {seq} is missing"),
                )
            }
            Some(expected) if expected > stamp => {
                self.fail(name, "an archive no seal covers (inserted)")
            }
            Some(_) => {
                if let Some(group) = self.groups.pop_front() {
                    self.check(name, group, false);
                }
            }
        }
    }

    /// The group of `seal/current` (mid seals), to the first file after the
    /// last end seal; an empty one to every later file.
    fn take_open(&mut self) -> Group {
        let empty = Group {
            archive: None,
            marks: Vec::new(),
        };
        if self.open_taken {
            return empty;
        }
        self.open_taken = true;
        std::mem::replace(&mut self.open, empty)
    }

    /// Begins `current`.
    pub fn begin_current(&mut self) {
        self.plan();
        self.end_file();
        if self.phase != Phase::Files {
            return;
        }
        self.current_seen = true;
        self.begin_current_group("current");
    }

    fn begin_current_group(&mut self, name: &str) {
        if self.groups.len() == 1 && self.open.marks.is_empty() && !self.open_taken {
            // Sealed as an archive, not yet renamed: a rotation cut short.
            self.summary_mut().rotation_interrupted = true;
            if let Some(group) = self.groups.pop_front() {
                self.check(name.into(), group, false);
            }
            return;
        }
        if let Some(group) = self.groups.front() {
            let expected = group.archive.map(|s| s.to_string()).unwrap_or_default();
            let seq = group.marks.last().map_or(0, |m| m.seq);
            return self.fail(expected, format!("archive sealed by seal {seq} is missing"));
        }
        let group = self.take_open();
        self.check(name.into(), group, true);
    }

    fn check(&mut self, name: String, group: Group, open_end: bool) {
        let mut c = Checking {
            ended: group.archive.is_some(),
            name,
            group,
            next_mark: 0,
            at: Cover::START,
            span: None,
            open_end,
        };
        c.begin_span();
        self.checking = Some(c);
    }

    /// Feeds the next bytes of the file begun last.
    pub fn feed(&mut self, mut data: &[u8]) {
        if self.phase != Phase::Files {
            return;
        }
        let Some(mut c) = self.checking.take() else {
            return;
        };
        while !data.is_empty() {
            let (Some(mark), Some(span)) = (c.group.marks.get(c.next_mark), c.span.as_mut()) else {
                if !c.open_end {
                    let at = c.position();
                    return self.fail(
                        format!("{}: byte {at}", c.name),
                        "bytes after the end of what its last seal covers (appended)",
                    );
                }
                let (bytes, lines) = self.tail.unwrap_or((0, 0));
                let new_lines = memchr::memchr_iter(b'\n', data).count() as u64;
                self.tail = Some((bytes + data.len() as u64, lines + new_lines));
                break;
            };
            let room = mark.cover.bytes.saturating_sub(span.bytes());
            let take = data.len().min(usize::try_from(room).unwrap_or(usize::MAX));
            span.update(&data[..take]);
            data = &data[take..];
            if span.bytes() == mark.cover.bytes
                && let Err(t) = c.pass_mark()
            {
                return self.fail(t.place, t.why);
            }
        }
        self.checking = Some(c);
    }

    /// Ends the file being checked: it must hold all its seals cover.
    fn end_file(&mut self) {
        let Some(mut c) = self.checking.take() else {
            return;
        };
        if self.phase != Phase::Files {
            return;
        }
        // Marks at the very end of the file (or a file of nothing).
        while let Some(mark) = c.group.marks.get(c.next_mark) {
            let (seq, mark) = (mark.seq, mark.cover);
            if mark.bytes != c.position() {
                let have = c.position();
                return self.fail(
                    format!("{}: byte {have}", c.name),
                    format!(
                        "the file ends {} bytes before the end of what seal {seq} covers \
                         (truncated)",
                        mark.bytes.saturating_sub(have)
                    ),
                );
            }
            if let Err(t) = c.pass_mark() {
                return self.fail(t.place, t.why);
            }
        }
        if c.ended {
            self.summary_mut().archives_checked += 1;
        }
    }

    /// Ends the verification.
    pub fn finish(mut self) -> Verdict {
        self.plan();
        self.end_file();
        if self.phase == Phase::Files && !self.current_seen {
            // No current: as an empty one.
            self.current_seen = true;
            self.begin_current_group("current (absent)");
            self.end_file();
        }
        if let Some(t) = self.failure.take() {
            return Verdict::Tampered(t);
        }
        let summary = self
            .summary
            .take()
            .unwrap_or(Summary::after(0, Stamp::ZERO, None));
        match self.tail {
            Some((bytes, lines)) if bytes > 0 => Verdict::UnsealedTail {
                summary,
                lines,
                bytes,
            },
            _ => Verdict::Intact(summary),
        }
    }
}

impl Checking {
    /// Where the file being checked stands.
    fn position(&self) -> u64 {
        self.span.as_ref().map_or(self.at.bytes, Span::bytes)
    }

    /// Begins the span to the next seal, if any.
    fn begin_span(&mut self) {
        self.span = self
            .group
            .marks
            .get(self.next_mark)
            .map(|m| Span::new(&m.key, self.at));
    }

    /// At the next seal's length: its cover must be what the bytes give.
    fn pass_mark(&mut self) -> Result<(), Tamper> {
        let Some(mark) = self.group.marks.get(self.next_mark) else {
            return Ok(());
        };
        let got = self.span.take().map_or(self.at, Span::finish);
        if got != mark.cover {
            let (from, to) = (self.at, mark.cover);
            return Err(Tamper {
                place: format!(
                    "{}: lines {}-{} (bytes {}-{})",
                    self.name,
                    from.lines + 1,
                    to.lines.max(from.lines + 1),
                    from.bytes,
                    to.bytes
                ),
                why: format!(
                    "not the bytes seal {} covers (changed, inserted, removed or reordered)",
                    mark.seq
                ),
            });
        }
        self.at = got;
        self.next_mark += 1;
        self.begin_span();
        Ok(())
    }
}

fn sha256(data: &[u8]) -> [u8; HASH_LEN] {
    let mut out = [0u8; HASH_LEN];
    out.copy_from_slice(digest::digest(&digest::SHA256, data).as_ref());
    out
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Exactly `2 * N` lowercase hex digits.
fn parse_hex_array<const N: usize>(digits: &[u8]) -> Option<[u8; N]> {
    if digits.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = hex_digit(pair[0])? << 4 | hex_digit(pair[1])?;
    }
    Some(out)
}

/// Exactly 16 lowercase hex digits.
fn parse_hex_u64(digits: &[u8]) -> Option<u64> {
    parse_hex_array::<8>(digits).map(u64::from_be_bytes)
}

/// `@` and 24 lowercase hex digits, in canonical form.
fn parse_label(label: &[u8]) -> Option<Stamp> {
    let stamp = Stamp::parse_label(label)?;
    (stamp.label() == label).then_some(stamp)
}

#[cfg(test)]
#[path = "seal_tests.rs"]
mod tests;
