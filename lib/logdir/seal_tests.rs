//! The seal core against the tamper matrix of issue 16, at the byte level:
//! a log directory is simulated as lists of (name, bytes), written by an
//! honest writer that seals, rotates, deletes at the cap and crashes.

use super::*;

fn seed(n: u8) -> Seed {
    Seed::from_bytes([n; 32])
}

/// The cover of `sealer`'s next seal of `file`, its last seal at `from`.
fn cover_after(sealer: &Sealer, from: Cover, file: &[u8]) -> Cover {
    let mut span = Span::new(&sealer.span_key(), from);
    span.update(&file[from.bytes as usize..]);
    span.finish()
}

fn stamp(secs: u64) -> Stamp {
    Stamp::from_unix(1_800_000_000 + secs as i64, 0)
}

/// A log directory and its seal files, as the verifier would read them.
#[derive(Clone, Debug, Default)]
struct Dir {
    archives: Vec<(Stamp, Vec<u8>)>,
    current: Option<Vec<u8>>,
    /// `seal/@X` files, and `seal/current`.
    seal_archives: Vec<(Stamp, Vec<u8>)>,
    seal_current: Vec<u8>,
    /// The stored key state.
    key_file: Vec<u8>,
}

impl Dir {
    fn current(&mut self) -> &mut Vec<u8> {
        self.current.get_or_insert_with(Vec::new)
    }
}

/// An honest writer, after cyclog's order of durable steps: lines, then a
/// seal record, then the advanced key; at rotation the end record, then
/// the renames, then deletions at the old end.
struct Writer {
    dir: Dir,
    sealer: Sealer,
    /// The cover of the last seal of `current` (its start before one).
    at: Cover,
    clock: u64,
    unsealed: u64,
    seal_every: u64,
    keep: usize,
    first: Option<Stamp>,
    /// The directory after every durable step, torn steps included.
    crash_points: Vec<Dir>,
    record_crashes: bool,
}

impl Writer {
    fn new(seed: &Seed, seal_every: u64, keep: usize) -> Writer {
        let sealer = Sealer::new(seed);
        let dir = Dir {
            key_file: sealer.key_state(),
            ..Dir::default()
        };
        let mut w = Writer {
            dir,
            sealer,
            at: Cover::START,
            clock: 0,
            unsealed: 0,
            seal_every,
            keep,
            first: None,
            crash_points: Vec::new(),
            record_crashes: false,
        };
        // Seal 0, before any line: sealing has begun.
        w.seal();
        w
    }

    fn tick(&mut self) -> Stamp {
        self.clock += 1;
        stamp(self.clock)
    }

    fn point(&mut self) {
        if self.record_crashes {
            self.crash_points.push(self.dir.clone());
        }
    }

    fn line(&mut self, text: &str) {
        let mut bytes = self.tick().label().to_vec();
        bytes.push(b' ');
        bytes.extend_from_slice(text.as_bytes());
        bytes.push(b'\n');
        if self.record_crashes {
            // Torn: part of the line reached the disk.
            let mut torn = self.dir.clone();
            torn.current().extend_from_slice(&bytes[..bytes.len() / 2]);
            self.crash_points.push(torn);
        }
        self.dir.current().extend_from_slice(&bytes);
        self.point();
        self.unsealed += 1;
        if self.unsealed >= self.seal_every {
            self.seal();
        }
    }

    fn lines(&mut self, n: usize) {
        for i in 0..n {
            let text = format!("line {} of the log, number {i}", self.clock);
            self.line(&text);
        }
    }

    fn append_record(&mut self, record: &[u8]) {
        if self.record_crashes {
            let mut torn = self.dir.clone();
            torn.seal_current
                .extend_from_slice(&record[..record.len() / 3]);
            self.crash_points.push(torn);
            let mut zeros = self.dir.clone();
            zeros
                .seal_current
                .extend(std::iter::repeat_n(0, record.len()));
            self.crash_points.push(zeros);
        }
        self.dir.seal_current.extend_from_slice(record);
        self.point();
        self.dir.key_file = self.sealer.key_state();
        self.point();
    }

    /// A mid seal of current.
    fn seal(&mut self) {
        let at = self.tick();
        let cover = cover_after(&self.sealer, self.at, self.dir.current());
        let record = self
            .sealer
            .seal(Sealed::Current, at, self.first, cover)
            .expect("seal");
        self.at = cover;
        self.append_record(&record);
        self.unsealed = 0;
    }

    fn rotate(&mut self) {
        let name = self.tick();
        let mut kept: Vec<Stamp> = self.dir.archives.iter().map(|a| a.0).collect();
        kept.push(name);
        let first = kept[kept.len().saturating_sub(self.keep)];
        self.first = Some(first);
        let cover = cover_after(&self.sealer, self.at, self.dir.current());
        let record = self
            .sealer
            .seal(Sealed::Archive(name), name, self.first, cover)
            .expect("end seal");
        self.append_record(&record);
        let bytes = self.dir.current.take().unwrap_or_default();
        self.dir.archives.push((name, bytes));
        self.point();
        let seals = std::mem::take(&mut self.dir.seal_current);
        self.dir.seal_archives.push((name, seals));
        self.point();
        self.at = Cover::START;
        self.unsealed = 0;
        while self.dir.archives[0].0 < first {
            self.dir.archives.remove(0);
            self.point();
            self.dir.seal_archives.remove(0);
            self.point();
        }
    }

    /// kill -9 at one of the crash points, then a restart that recovers as
    /// cyclog will: drops a torn record, finishes an interrupted rotation,
    /// resumes the key and seals what it finds.
    fn crash_and_restart(mut dir: Dir, clock: u64, seal_every: u64, keep: usize) -> Writer {
        let whole = dir
            .seal_current
            .iter()
            .rposition(|&c| c == b'\n')
            .map_or(0, |i| i + 1);
        dir.seal_current.truncate(whole);
        let last_line = |dir: &Dir| -> Option<Vec<u8>> {
            let all: Vec<&Vec<u8>> = dir
                .seal_archives
                .iter()
                .map(|s| &s.1)
                .chain(std::iter::once(&dir.seal_current))
                .collect();
            let bytes = all.into_iter().rev().find(|b| !b.is_empty())?;
            let start = bytes[..bytes.len() - 1]
                .iter()
                .rposition(|&c| c == b'\n')
                .map_or(0, |i| i + 1);
            Some(bytes[start..].to_vec())
        };
        let last = last_line(&dir).map(|l| Record::parse(&l).expect("record"));
        // A torn line at the end of current: cyclog recovers it as the
        // unsealed tail and completes it; here the line is simply ended.
        if let Some(current) = &mut dir.current
            && current.last().is_some_and(|&c| c != b'\n')
        {
            current.push(b'\n');
        }
        let first = last.as_ref().and_then(|r| r.first);
        if let Some(Record {
            file: Sealed::Archive(name),
            ..
        }) = last
        {
            if dir.archives.last().map(|a| a.0) != Some(name) {
                let bytes = dir.current.take().unwrap_or_default();
                dir.archives.push((name, bytes));
            }
            if !dir.seal_current.is_empty() {
                let seals = std::mem::take(&mut dir.seal_current);
                dir.seal_archives.push((name, seals));
            }
            if let Some(f) = first {
                while dir.archives.first().is_some_and(|a| a.0 < f) {
                    dir.archives.remove(0);
                }
                while dir.seal_archives.first().is_some_and(|a| a.0 < f) {
                    dir.seal_archives.remove(0);
                }
            }
        }
        let keys = KeyChain::decode(&dir.key_file).expect("key file");
        let last = last_line(&dir);
        let sealer = Sealer::resume(keys, last.as_deref()).expect("resume");
        let at = last
            .as_deref()
            .and_then(Record::parse)
            .filter(|r| r.file == Sealed::Current)
            .map_or(Cover::START, |r| r.cover);
        let mut w = Writer {
            dir,
            sealer,
            at,
            clock: 0,
            unsealed: 0,
            seal_every,
            keep,
            first,
            crash_points: Vec::new(),
            record_crashes: false,
        };
        w.clock = clock;
        w.dir.key_file = w.sealer.key_state();
        w.seal();
        w
    }
}

fn verify_chunked(seed: &Seed, dir: &Dir, chunk: usize) -> Verdict {
    let mut v = Verifier::new(seed);
    for (name, bytes) in &dir.seal_archives {
        v.seal_file(&format!("seal/{name}"), bytes);
    }
    v.seal_file("seal/current", &dir.seal_current);
    for (name, bytes) in &dir.archives {
        v.begin_archive(*name);
        for piece in bytes.chunks(chunk) {
            v.feed(piece);
        }
    }
    if let Some(current) = &dir.current {
        v.begin_current();
        for piece in current.chunks(chunk) {
            v.feed(piece);
        }
    }
    v.finish()
}

fn verify(seed: &Seed, dir: &Dir) -> Verdict {
    verify_chunked(seed, dir, 4096)
}

fn tampered(verdict: &Verdict) -> &Tamper {
    match verdict {
        Verdict::Tampered(t) => t,
        other => panic!("expected tampering to be found, got {other:?}"),
    }
}

fn assert_honest(verdict: &Verdict) {
    assert!(
        !matches!(verdict, Verdict::Tampered(_)),
        "an honest directory fails: {verdict:?}"
    );
}

/// Three archives, each sealed every 4 lines, and current sealed too.
fn sealed_dir(seed: &Seed) -> Writer {
    let mut w = Writer::new(seed, 4, 100);
    for _ in 0..3 {
        w.lines(10);
        w.rotate();
    }
    w.lines(8);
    w
}

/// Lines (LF included) of a file.
fn split_lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes
        .split_inclusive(|&c| c == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

#[test]
fn an_honest_sealed_directory_is_intact_whatever_the_chunk_sizes() {
    let s = seed(1);
    let w = sealed_dir(&s);
    for chunk in [1, 7, 64, 4096] {
        match verify_chunked(&s, &w.dir, chunk) {
            Verdict::Intact(summary) => {
                assert_eq!(summary.archives_checked, 3);
                assert_eq!(summary.sealed_from, Some(w.dir.archives[0].0));
            }
            other => panic!("chunk {chunk}: {other:?}"),
        }
    }
}

#[test]
fn lines_after_the_last_seal_are_an_unsealed_tail_not_tampering() {
    let s = seed(1);
    let mut w = sealed_dir(&s);
    w.lines(3);
    match verify(&s, &w.dir) {
        Verdict::UnsealedTail { lines, .. } => assert_eq!(lines, 3),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_directory_sealed_only_in_current_before_any_rotation_is_intact() {
    let s = seed(1);
    let mut w = Writer::new(&s, 4, 10);
    w.lines(8);
    assert!(matches!(verify(&s, &w.dir), Verdict::Intact(_)));
}

#[test]
fn editing_any_one_sealed_byte_is_tampering() {
    let s = seed(1);
    let w = sealed_dir(&s);
    for a in 0..w.dir.archives.len() {
        for i in 0..w.dir.archives[a].1.len() {
            let mut dir = w.dir.clone();
            dir.archives[a].1[i] ^= 0x20;
            let verdict = verify(&s, &dir);
            let t = tampered(&verdict);
            assert!(t.place.starts_with(&dir.archives[a].0.to_string()), "{t}");
        }
    }
    let current = w.dir.current.clone().unwrap_or_default();
    for i in 0..current.len() {
        let mut dir = w.dir.clone();
        dir.current()[i] ^= 0x01;
        assert!(tampered(&verify(&s, &dir)).place.starts_with("current"));
    }
}

#[test]
fn the_first_bad_place_is_named_by_its_lines() {
    let s = seed(1);
    let mut w = sealed_dir(&s);
    w.dir.archives[1].1[5 * 60] ^= 1;
    let t = tampered(&verify(&s, &w.dir)).clone();
    let name = w.dir.archives[1].0.to_string();
    assert!(t.place.starts_with(&format!("{name}: lines 5-8")), "{t}");
}

#[test]
fn deleting_inserting_or_reordering_lines_is_tampering() {
    let s = seed(1);
    let w = sealed_dir(&s);
    let edits: [fn(&mut Vec<Vec<u8>>); 3] = [
        |lines| {
            lines.remove(2);
        },
        |lines| {
            let copy = lines[1].clone();
            lines.insert(3, copy);
        },
        |lines| lines.swap(1, 2),
    ];
    for edit in edits {
        for a in 0..w.dir.archives.len() {
            let mut dir = w.dir.clone();
            let mut lines = split_lines(&dir.archives[a].1);
            edit(&mut lines);
            dir.archives[a].1 = lines.concat();
            tampered(&verify(&s, &dir));
        }
        let mut dir = w.dir.clone();
        let mut lines = split_lines(dir.current());
        edit(&mut lines);
        *dir.current() = lines.concat();
        tampered(&verify(&s, &dir));
    }
}

#[test]
fn truncating_current_below_its_last_seal_is_tampering() {
    let s = seed(1);
    let mut w = sealed_dir(&s);
    w.lines(2);
    let sealed = w.dir.current.as_ref().map_or(0, Vec::len) - 2 * 60;
    for keep in [0, 1, sealed / 2, sealed - 70] {
        let mut dir = w.dir.clone();
        dir.current().truncate(keep);
        let t = tampered(&verify(&s, &dir)).clone();
        assert!(
            t.why.contains("truncated") || t.why.contains("not the bytes"),
            "{t}"
        );
    }
    let mut dir = w.dir.clone();
    dir.current = None;
    tampered(&verify(&s, &dir));
}

#[test]
fn truncating_an_archive_or_appending_to_it_is_tampering() {
    let s = seed(1);
    let w = sealed_dir(&s);
    let mut dir = w.dir.clone();
    let len = dir.archives[1].1.len();
    dir.archives[1].1.truncate(len - 1);
    tampered(&verify(&s, &dir));
    let mut dir = w.dir.clone();
    dir.archives[1]
        .1
        .extend_from_slice(b"@400000006b00f7540ae5ce12 added\n");
    assert!(tampered(&verify(&s, &dir)).why.contains("appended"));
}

#[test]
fn deleting_a_middle_archive_is_tampering_with_or_without_its_seals() {
    let s = seed(1);
    let w = sealed_dir(&s);
    let mut dir = w.dir.clone();
    let gone = dir.archives.remove(1).0;
    assert_eq!(tampered(&verify(&s, &dir)).place, gone.to_string());
    dir.seal_archives.remove(1);
    tampered(&verify(&s, &dir));
}

#[test]
fn deleting_the_newest_archive_is_tampering() {
    let s = seed(1);
    let w = sealed_dir(&s);
    let mut dir = w.dir.clone();
    dir.archives.pop();
    tampered(&verify(&s, &dir));
}

#[test]
fn archives_deleted_at_the_old_end_under_the_cap_verify_as_a_sealed_truncation() {
    let s = seed(1);
    let mut w = Writer::new(&s, 4, 3);
    for _ in 0..7 {
        w.lines(6);
        w.rotate();
    }
    w.lines(5);
    assert_eq!(w.dir.archives.len(), 3);
    match verify(&s, &w.dir) {
        Verdict::UnsealedTail { summary, .. } | Verdict::Intact(summary) => {
            assert_eq!(summary.sealed_from, Some(w.dir.archives[0].0));
            assert_eq!(summary.archives_checked, 3);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn deleting_more_at_the_old_end_than_the_cap_did_is_tampering() {
    let s = seed(1);
    let mut w = Writer::new(&s, 4, 3);
    for _ in 0..5 {
        w.lines(6);
        w.rotate();
    }
    let mut dir = w.dir.clone();
    dir.archives.remove(0);
    tampered(&verify(&s, &dir));
    dir.seal_archives.remove(0);
    assert!(tampered(&verify(&s, &dir)).why.contains("removed"));
}

#[test]
fn an_archive_inserted_between_sealed_ones_is_tampering() {
    let s = seed(1);
    let w = sealed_dir(&s);
    let mut dir = w.dir.clone();
    let between = Stamp::from_parts(dir.archives[0].0.secs() + 1, 5).unwrap();
    dir.archives
        .insert(1, (between, b"@400000006b00f7540ae5ce12 x\n".to_vec()));
    tampered(&verify(&s, &dir));
}

#[test]
fn an_archive_replayed_from_another_sealed_directory_is_tampering() {
    let s = seed(1);
    let other_seed = seed(2);
    let w = sealed_dir(&s);
    let other = sealed_dir(&other_seed);
    // The other directory's archive of the same name, with and without its
    // seal file; and the same key used for both directories.
    let mut dir = w.dir.clone();
    dir.archives[1] = other.dir.archives[1].clone();
    dir.archives[1].1[40] ^= 4; // differs from ours, as another log would
    tampered(&verify(&s, &dir));
    dir.seal_archives[1] = other.dir.seal_archives[1].clone();
    tampered(&verify(&s, &dir));
    let mut same_key = Writer::new(&s, 4, 100);
    same_key.lines(3);
    for _ in 0..3 {
        same_key.lines(11);
        same_key.rotate();
    }
    let mut dir = w.dir.clone();
    dir.archives[1] = same_key.dir.archives[1].clone();
    dir.seal_archives[1] = same_key.dir.seal_archives[1].clone();
    tampered(&verify(&s, &dir));
}

#[test]
fn resealing_with_a_key_taken_later_is_tampering() {
    // CVE-2023-31438's shape: the attacker holds the stored key state and
    // rewrites what an earlier seal covered, sealing it again.
    let s = seed(1);
    let w = sealed_dir(&s);
    let stolen = KeyChain::decode(&w.dir.key_file).expect("key");
    let stolen_index = stolen.index();
    let records = split_lines(&w.dir.seal_current);
    assert!(records.len() >= 2);
    // Keep the first record of current, edit the lines the second covers.
    let kept = Record::parse(&records[0]).expect("record");
    let mut dir = w.dir.clone();
    let edit_at = kept.cover.bytes as usize + 30;
    dir.current()[edit_at] ^= 1;
    let cover = {
        let stolen = KeyChain::decode(&w.dir.key_file).expect("key");
        let mut span = Span::new(&stolen.span_key(), kept.cover);
        span.update(&dir.current()[kept.cover.bytes as usize..]);
        span.finish()
    };

    // 1. Truncate the seals after the kept one; continue the chain from it
    //    with the stolen key.
    let mut sealer = Sealer {
        keys: stolen,
        prev: sha256(&records[0]),
        last: Some(kept.clone()),
    };
    let forged = sealer
        .seal(Sealed::Current, stamp(10_000), kept.first, cover)
        .expect("forge");
    dir.seal_current = [records[0].clone(), forged].concat();
    let t = tampered(&verify(&s, &dir)).clone();
    assert!(t.why.contains("missing"), "{t}");

    // 2. Claim the kept record's successor number, MAC with the stolen key.
    let stolen = KeyChain::decode(&w.dir.key_file).expect("key");
    let mut record = Record {
        seq: kept.seq + 1,
        file: Sealed::Current,
        at: stamp(10_000),
        first: kept.first,
        cover,
        prev: sha256(&records[0]),
        mac: [0; 32],
    };
    assert!(record.seq < stolen_index);
    let tag = hmac::sign(&stolen.mac_key(), &record.body());
    record.mac.copy_from_slice(tag.as_ref());
    dir.seal_current = [records[0].clone(), record.encode()].concat();
    assert!(tampered(&verify(&s, &dir)).why.contains("does not verify"));

    // 3. The writer's own resume refuses to go back.
    let stolen = KeyChain::decode(&w.dir.key_file).expect("key");
    assert!(Sealer::resume(stolen, Some(&records[0])).is_err());
}

#[test]
fn removing_the_seal_records_is_tampering() {
    let s = seed(1);
    let w = sealed_dir(&s);
    let mut dir = w.dir.clone();
    dir.seal_current.clear();
    for seals in &mut dir.seal_archives {
        seals.1.clear();
    }
    assert!(tampered(&verify(&s, &dir)).why.contains("no seal record"));
    // Removing one record in the middle breaks the chain.
    let mut dir = w.dir.clone();
    let mut records = split_lines(&dir.seal_archives[1].1);
    records.remove(1);
    dir.seal_archives[1].1 = records.concat();
    tampered(&verify(&s, &dir));
    // Removing a middle seal file too.
    let mut dir = w.dir.clone();
    dir.seal_archives.remove(1);
    tampered(&verify(&s, &dir));
}

#[test]
fn reordering_seal_records_is_tampering() {
    let s = seed(1);
    let w = sealed_dir(&s);
    let mut dir = w.dir.clone();
    let mut records = split_lines(&dir.seal_archives[0].1);
    records.swap(0, 1);
    dir.seal_archives[0].1 = records.concat();
    tampered(&verify(&s, &dir));
}

#[test]
fn a_wrong_key_is_tampering() {
    let w = sealed_dir(&seed(1));
    assert!(
        tampered(&verify(&seed(3), &w.dir))
            .why
            .contains("does not verify")
    );
}

#[test]
fn a_directory_never_sealed_fails_given_a_key() {
    // systemd #15425: a file never sealed passed --verify-key.
    let dir = Dir {
        archives: vec![(stamp(100), b"@400000006b00f7540ae5ce12 x\n".to_vec())],
        current: Some(b"@400000006b00f7540ae5ce13 y\n".to_vec()),
        ..Dir::default()
    };
    assert!(
        tampered(&verify(&seed(1), &dir))
            .why
            .contains("never sealed")
    );
}

#[test]
fn archives_from_before_sealing_began_are_counted_not_checked() {
    let s = seed(1);
    let mut w = Writer::new(&s, 4, 100);
    w.dir
        .archives
        .push((stamp(0), b"@400000006b00f7540ae5ce12 old\n".to_vec()));
    w.first = None;
    w.lines(8);
    match verify(&s, &w.dir) {
        Verdict::Intact(summary) => assert_eq!(summary.archives_not_covered, 1),
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_crash_point_of_an_honest_writer_verifies() {
    let s = seed(1);
    let mut w = Writer::new(&s, 3, 2);
    w.record_crashes = true;
    for _ in 0..4 {
        w.lines(5);
        w.rotate();
    }
    w.lines(4);
    assert!(w.crash_points.len() > 60, "{}", w.crash_points.len());
    for (i, dir) in w.crash_points.iter().enumerate() {
        let verdict = verify(&s, dir);
        assert!(
            !matches!(verdict, Verdict::Tampered(_)),
            "crash point {i}: {verdict:?}"
        );
    }
}

#[test]
fn an_honest_directory_after_100_kill_9s_verifies() {
    let s = seed(1);
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut w = Writer::new(&s, 3, 2);
    for _ in 0..100 {
        w.record_crashes = true;
        w.crash_points.clear();
        for _ in 0..next() % 3 {
            w.lines((next() % 6) as usize);
            if next() % 2 == 0 {
                w.rotate();
            }
        }
        w.lines(1 + (next() % 4) as usize);
        let at = (next() as usize) % w.crash_points.len();
        let dir = w.crash_points[at].clone();
        assert_honest(&verify(&s, &dir));
        w = Writer::crash_and_restart(dir, w.clock + 1, 3, 2);
        assert_honest(&verify(&s, &w.dir));
    }
}

#[test]
fn hostile_seal_files_never_panic_and_flipped_records_fail() {
    let s = seed(1);
    let w = sealed_dir(&s);
    let mut rng = 12345u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let original = w.dir.seal_archives[1].1.clone();
    for i in 0..original.len() {
        let mut dir = w.dir.clone();
        dir.seal_archives[1].1[i] ^= 1 << (next() % 8);
        tampered(&verify(&s, &dir));
    }
    for _ in 0..500 {
        let mut dir = w.dir.clone();
        let len = (next() % 700) as usize;
        let noise: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        match next() % 3 {
            0 => dir.seal_current = noise,
            1 => dir.seal_archives[0].1 = noise,
            _ => dir.seal_current.extend_from_slice(&noise),
        }
        let _ = verify(&s, &dir);
        assert!(Record::parse(&dir.seal_current).is_none() || dir.seal_current.is_empty());
    }
}

#[test]
fn a_record_parses_only_in_its_canonical_form() {
    let s = seed(1);
    let w = sealed_dir(&s);
    let line = split_lines(&w.dir.seal_current)[0].clone();
    let record = Record::parse(&line).expect("parses");
    assert_eq!(record.encode(), line);
    let upper = String::from_utf8(line.clone()).unwrap().to_uppercase();
    assert!(Record::parse(upper.as_bytes()).is_none());
    let mut spaced = line.clone();
    spaced.insert(12, b' ');
    assert!(Record::parse(&spaced).is_none());
    assert!(Record::parse(&line[..line.len() - 1]).is_none());
    assert!(line.len() <= MAX_RECORD_LEN);
}

#[test]
fn a_leaf_sought_from_the_seed_is_the_leaf_the_writer_reached() {
    let s = seed(7);
    let mut chain = KeyChain::at(&s, 0).unwrap();
    for i in 0..600u64 {
        assert_eq!(chain.index(), i);
        let sought = KeyChain::at(&s, i).unwrap();
        assert_eq!(sought.leaf(), chain.leaf(), "leaf {i}");
        assert_eq!(KeyChain::decode(&chain.encode()).unwrap(), chain);
        chain.advance().unwrap();
    }
    for i in [(1 << 20) - 1, 1 << 20, MAX_SEALS - 2] {
        let mut chain = KeyChain::at(&s, i).unwrap();
        chain.advance().unwrap();
        assert_eq!(chain.leaf(), KeyChain::at(&s, i + 1).unwrap().leaf());
        assert_eq!(KeyChain::decode(&chain.encode()).unwrap(), chain);
    }
    let mut last = KeyChain::at(&s, MAX_SEALS - 1).unwrap();
    assert_eq!(last.advance(), Err(SealError::Exhausted));
    assert!(KeyChain::at(&s, MAX_SEALS).is_none());
}

#[test]
fn distinct_leaves_for_distinct_seals() {
    let s = seed(7);
    let mut seen = std::collections::HashSet::new();
    let mut chain = KeyChain::at(&s, 0).unwrap();
    for _ in 0..300 {
        assert!(seen.insert(*chain.leaf()));
        chain.advance().unwrap();
    }
}

#[test]
fn a_torn_or_reshaped_key_state_is_refused() {
    let chain = KeyChain::at(&seed(7), 12345).unwrap();
    let good = chain.encode();
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 1;
        assert!(KeyChain::decode(&bad).is_err(), "byte {i}");
    }
    assert!(KeyChain::decode(&good[..good.len() / 2]).is_err());
    // A well-formed line whose nodes do not fit its index.
    let other = KeyChain::at(&seed(7), 12346).unwrap().encode();
    let mut spliced = good[..KEY_STATE_TAG.len() + 1].to_vec();
    spliced.extend_from_slice(&other[KEY_STATE_TAG.len() + 1..KEY_STATE_TAG.len() + 17]);
    spliced.extend_from_slice(&good[KEY_STATE_TAG.len() + 17..good.len() - 65]);
    spliced.push(b' ');
    let sum = digest::digest(&digest::SHA256, &spliced);
    spliced.extend_from_slice(hex(sum.as_ref()).as_bytes());
    spliced.push(b'\n');
    assert!(KeyChain::decode(&spliced).is_err());
}

#[test]
fn the_verification_line_round_trips_and_catches_a_typo() {
    let s = Seed::from_bytes(*b"0123456789abcdef0123456789abcdef");
    let line = s.verification_line();
    assert_eq!(Seed::parse_verification_line(&format!(" {line}\n")), Ok(s));
    let mut typo = line.clone().into_bytes();
    typo[25] = if typo[25] == b'0' { b'1' } else { b'0' };
    assert!(Seed::parse_verification_line(std::str::from_utf8(&typo).unwrap()).is_err());
    assert!(Seed::parse_verification_line("rill-seal-verify-1:00").is_err());
}

#[test]
fn an_end_record_is_the_longest_record_logseal_7_states() {
    let s = seed(1);
    let mut w = Writer::new(&s, 4, 100);
    w.lines(2);
    w.rotate();
    let end = split_lines(&w.dir.seal_archives[0].1).pop().unwrap();
    assert_eq!(end.len(), MAX_RECORD_LEN);
    assert_eq!(MAX_RECORD_LEN, 340);
}

#[test]
fn archives_rotated_before_their_end_seals_are_checked_against_the_mid_seals() {
    let s = seed(1);
    let mut w = sealed_dir(&s);
    w.seal();
    w.lines(2);
    // Killed with two rotations waiting: current renamed, a second archive
    // rotated, a new current; no end seal made.
    let mut dir = w.dir.clone();
    let first = w.tick();
    let bytes = dir.current.take().unwrap_or_default();
    dir.archives.push((first, bytes));
    let second = w.tick();
    dir.archives
        .push((second, b"@400000006b00f7540ae5ce12 more\n".to_vec()));
    dir.current = Some(b"@400000006b00f7540ae5ce13 last\n".to_vec());
    match verify(&s, &dir) {
        Verdict::UnsealedTail { summary, lines, .. } => {
            assert_eq!(summary.archives_unsealed, 2);
            assert_eq!(lines, 4, "2 after the last mid seal, 1 in each newer file");
        }
        other => panic!("{other:?}"),
    }
    // The first of them must hold what the mid seals cover.
    let mut edited = dir.clone();
    let at = edited.archives.len() - 2;
    edited.archives[at].1[30] ^= 1;
    assert!(
        tampered(&verify(&s, &edited))
            .place
            .starts_with(&first.to_string())
    );
    // Taken away, the mid seals fall on the next one, which does not hold it.
    let mut removed = dir.clone();
    removed.archives.remove(at);
    assert!(
        tampered(&verify(&s, &removed))
            .place
            .starts_with(&second.to_string())
    );
}

#[test]
fn a_span_tags_the_same_bytes_to_the_same_cover_however_they_are_cut() {
    let sealer = Sealer::new(&seed(4));
    let bytes: Vec<u8> = (0..3 * PIECE + 12_345).map(|i| (i % 251) as u8).collect();
    let whole = cover_after(&sealer, Cover::START, &bytes);
    for cut in [1, 7, 4096, PIECE - 1, PIECE, PIECE + 1, 2 * PIECE] {
        let mut by_ref = Span::new(&sealer.span_key(), Cover::START);
        let mut in_place = Span::new(&sealer.span_key(), Cover::START);
        for chunk in bytes.chunks(cut) {
            by_ref.update(chunk);
            in_place.update_mut(&mut chunk.to_vec());
        }
        assert_eq!(by_ref.finish(), whole, "cut every {cut}");
        assert_eq!(in_place.finish(), whole, "in place, cut every {cut}");
    }
    // Another seal's key, or one byte changed, gives another cover.
    let mut next = Sealer::new(&seed(4));
    next.seal(Sealed::Current, stamp(1), None, Cover::START)
        .expect("seal");
    assert_ne!(cover_after(&next, Cover::START, &bytes), whole);
    let mut changed = bytes.clone();
    changed[2 * PIECE + 3] ^= 1;
    assert_ne!(cover_after(&sealer, Cover::START, &changed), whole);
    // No bytes: the cover stays.
    assert_eq!(cover_after(&sealer, whole, &bytes), whole);
}
