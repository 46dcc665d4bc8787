//! How far a kernel log reader got: the boot it was reading and the last
//! sequence number it wrote out, kept in a state file so that a reader
//! started again in the same boot skips what was already written, and can
//! say how many records were lost in between.
//!
//! The file is one line, `klog-read boot=<boot id> seq=<n>`, replaced
//! atomically: written to `FILE.new`, synced, renamed over `FILE`, and the
//! directory synced. It is saved only after the lines up to `seq` were
//! written out, so a crash can make a reader write a few records again but
//! never skip one.

use std::fs::{self, File};
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::Mode;

use crate::error::{Context, Error, Result};
use crate::format::event_time::UnixTime;
use crate::sys::atomic_file::AtomicFile;

/// The id of the running boot, new at every boot.
pub const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";

/// The least time between two saves while records keep coming.
pub const SAVE_EVERY: Duration = Duration::from_secs(1);

/// What the state file holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Saved {
    pub boot: String,
    pub seq: u64,
}

impl Saved {
    pub fn encode(&self) -> String {
        format!("klog-read boot={} seq={}\n", self.boot, self.seq)
    }

    pub fn decode(text: &str) -> Option<Saved> {
        let mut words = text.split_ascii_whitespace();
        let (Some("klog-read"), Some(boot), Some(seq), None) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            return None;
        };
        let boot = boot.strip_prefix("boot=").filter(|b| !b.is_empty())?;
        let seq = seq.strip_prefix("seq=")?.parse().ok()?;
        Some(Saved {
            boot: boot.to_string(),
            seq,
        })
    }
}

/// The running boot's id, from `path` (`BOOT_ID`).
pub fn boot_id(path: &Path) -> io::Result<String> {
    let text = fs::read_to_string(path)?;
    let id = text.trim();
    if id.is_empty() || id.contains(char::is_whitespace) {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "not a boot id"));
    }
    Ok(id.to_string())
}

/// When the running boot started, by the real-time clock: the real-time
/// clock less the monotonic one, read one after the other (as each record
/// is read, so that a clock stepped since is followed). The kernel stamps
/// its records with its own clock (`local_clock`), which like the
/// monotonic one stops during suspend, but is not slewed by NTP as the
/// monotonic clock is: a record's time is off by the drift between the
/// two since boot (parts per million of the uptime), plus any step of the
/// real-time clock between the record and its reading. `dmesg -T` takes
/// the boot time from the boot-time clock instead, which counts time
/// suspended: it is wrong by the time suspended after a resume; this is
/// not.
pub fn boot_time() -> UnixTime {
    use rustix::time::{ClockId, clock_gettime};
    let real = clock_gettime(ClockId::Realtime);
    let mono = clock_gettime(ClockId::Monotonic);
    let nanos =
        |t: rustix::time::Timespec| i128::from(t.tv_sec) * 1_000_000_000 + i128::from(t.tv_nsec);
    let booted = nanos(real) - nanos(mono);
    UnixTime {
        unix: booted.div_euclid(1_000_000_000) as i64,
        nanos: booted.rem_euclid(1_000_000_000) as u32,
    }
}

/// The state file.
pub struct StateFile {
    path: PathBuf,
    dir: PathBuf,
    /// Its name in `dir`, and its temporary name there.
    name: PathBuf,
    temp: PathBuf,
}

impl StateFile {
    pub fn new(path: &Path) -> StateFile {
        let name = PathBuf::from(path.file_name().unwrap_or(path.as_os_str()));
        let mut temp = name.as_os_str().to_owned();
        temp.push(".new");
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        StateFile {
            path: path.to_path_buf(),
            dir,
            name,
            temp: PathBuf::from(temp),
        }
    }

    pub fn name(&self) -> String {
        self.path.display().to_string()
    }

    /// What the file holds; nothing when there is no file yet.
    pub fn load(&self) -> Result<Option<Saved>> {
        let text = match fs::read(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).context(|| self.name()),
        };
        std::str::from_utf8(&text)
            .ok()
            .and_then(Saved::decode)
            .map(Some)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not a klog-read state file"))
            .context(|| self.name())
    }

    /// Replaces the file with `saved`, durably.
    pub fn save(&self, saved: &Saved) -> Result<()> {
        let dir = File::open(&self.dir).context(|| format!("open {}", self.dir.display()))?;
        // As the file was given: a bare name is shown bare.
        let shown = match self.path.parent() {
            Some(p) => p.to_string_lossy(),
            None => "".into(),
        };
        AtomicFile {
            dir: dir.as_fd(),
            shown: &shown,
            name: &self.name,
            temp: &self.temp,
            mode: Mode::from_raw_mode(0o666),
        }
        .replace(saved.encode().as_bytes())
    }
}

/// Where to go on from, after what `path` says, and the keeper that will
/// update it. Without a boot id, a reader starts afresh: it may write
/// records again, never skip one. A state file that exists but cannot be
/// read is an error, unless `fresh`: writing the whole ring buffer again
/// must be asked for, not happen behind the reader's back; with `fresh`,
/// what the file says is ignored and it is replaced.
/// Also the boot id when the state is of another boot (or there is none):
/// a boot not read before.
pub fn resume_from(path: &Path, fresh: bool) -> Result<(Sequence, Option<Keeper>, Option<String>)> {
    let boot = match boot_id(Path::new(BOOT_ID)) {
        Ok(boot) => boot,
        Err(e) => {
            crate::cli::warn(&format!("{BOOT_ID}: {e}; not using a state file"));
            return Ok((Sequence::fresh(), None, None));
        }
    };
    let file = StateFile::new(path);
    let saved = if fresh {
        crate::cli::info(&format!(
            "--fresh: not reading {}; writing the whole kernel log",
            file.name()
        ));
        None
    } else {
        file.load().map_err(|e| {
            Error::invalid(
                format!("unable to read the state file {e}"),
                "fix or remove it, or give --fresh to write the whole kernel log again",
            )
        })?
    };
    let same = saved.as_ref().filter(|s| s.boot == boot);
    if let Some(saved) = same {
        crate::cli::info(&format!("same boot: going on after seq {}", saved.seq));
    }
    let new_boot = same.is_none().then(|| boot.clone());
    let sequence = Sequence::resume(saved.as_ref(), &boot);
    Ok((sequence, Some(Keeper::new(file, boot)), new_boot))
}

/// Which records to write, given where the last reader got to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sequence {
    /// Records up to this one were written by the last reader.
    skip_through: Option<u64>,
    /// The next record expected; a later one means records were lost.
    expected: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// Already written by the last reader.
    Skip,
    Write,
    /// Write it, after saying that `first..=last` were lost.
    AfterLoss {
        first: u64,
        last: u64,
    },
}

impl Sequence {
    /// Without a state: write everything; losses show from the second
    /// record on.
    pub fn fresh() -> Sequence {
        Sequence {
            skip_through: None,
            expected: None,
        }
    }

    /// Going on after `saved`, in the boot `boot`: in the same boot, skip
    /// what was written; in a new one, start afresh from its first record
    /// (0), so that what the kernel overwrote before we came is said.
    pub fn resume(saved: Option<&Saved>, boot: &str) -> Sequence {
        match saved {
            Some(saved) if saved.boot == boot => Sequence {
                skip_through: Some(saved.seq),
                expected: saved.seq.checked_add(1),
            },
            _ => Sequence {
                skip_through: None,
                expected: Some(0),
            },
        }
    }

    pub fn admit(&mut self, seq: u64) -> Admit {
        if self.skip_through.is_some_and(|last| seq <= last) {
            return Admit::Skip;
        }
        let admit = match self.expected {
            Some(first) if seq > first => Admit::AfterLoss {
                first,
                last: seq - 1,
            },
            _ => Admit::Write,
        };
        self.expected = seq.checked_add(1);
        admit
    }
}

/// Saves the state after output was written: at once when the last save
/// is `SAVE_EVERY` old, otherwise when it will be; and at the end.
pub struct Keeper {
    file: StateFile,
    boot: String,
    /// Written out, not yet saved.
    unsaved: Option<u64>,
    /// When to save it.
    due: Option<Instant>,
    last_save: Option<Instant>,
    failing: bool,
}

impl Keeper {
    pub fn new(file: StateFile, boot: String) -> Keeper {
        Keeper {
            file,
            boot,
            unsaved: None,
            due: None,
            last_save: None,
            failing: false,
        }
    }

    /// The lines up to the record `seq` are written out.
    pub fn written(&mut self, seq: u64) {
        self.unsaved = Some(seq);
        if self.due.is_none() {
            let now = Instant::now();
            self.due = Some(self.last_save.map_or(now, |at| now.max(at + SAVE_EVERY)));
        }
    }

    /// When the next save is due.
    pub fn deadline(&self) -> Option<Instant> {
        self.due
    }

    pub fn save_if_due(&mut self, now: Instant) {
        if self.deadline().is_some_and(|due| due <= now) {
            self.save();
        }
    }

    /// Saves what is unsaved, now; false if it could not be.
    pub fn save(&mut self) -> bool {
        let Some(seq) = self.unsaved else {
            return true;
        };
        self.last_save = Some(Instant::now());
        self.due = None;
        let saved = Saved {
            boot: self.boot.clone(),
            seq,
        };
        match self.file.save(&saved) {
            Ok(()) => {
                if self.failing {
                    crate::cli::info(&format!("{}: saved again", self.file.name()));
                    self.failing = false;
                }
                self.unsaved = None;
                true
            }
            Err(e) => {
                self.due = Some(Instant::now() + SAVE_EVERY);
                if !self.failing {
                    crate::cli::warn(&format!(
                        "{e}; a restart will write records again until it can be saved"
                    ));
                    self.failing = true;
                }
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOOT: &str = "30e5b4fc-b4ef-4c67-a7a7-9d81ef035ad0";

    fn saved(boot: &str, seq: u64) -> Saved {
        Saved {
            boot: boot.to_string(),
            seq,
        }
    }

    #[test]
    fn the_state_line_round_trips_and_nothing_else_is_taken() {
        let s = saved(BOOT, 12345);
        assert_eq!(s.encode(), format!("klog-read boot={BOOT} seq=12345\n"));
        assert_eq!(Saved::decode(&s.encode()), Some(s));
        for bad in [
            "",
            "klog-read",
            "klog-read boot= seq=1",
            "klog-read boot=x seq=-1",
            "klog-read boot=x seq=1 more",
            "cyclog boot=x seq=1",
            "klog-read seq=1 boot=x",
        ] {
            assert_eq!(Saved::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn same_boot_skips_what_was_written_and_says_what_was_lost() {
        let mut s = Sequence::resume(Some(&saved(BOOT, 10)), BOOT);
        assert_eq!(s.admit(3), Admit::Skip);
        assert_eq!(s.admit(10), Admit::Skip);
        assert_eq!(s.admit(11), Admit::Write);
        assert_eq!(
            s.admit(15),
            Admit::AfterLoss {
                first: 12,
                last: 14
            }
        );
        assert_eq!(s.admit(16), Admit::Write);
        // Overwritten while no reader ran:
        let mut s = Sequence::resume(Some(&saved(BOOT, 10)), BOOT);
        assert_eq!(
            s.admit(20),
            Admit::AfterLoss {
                first: 11,
                last: 19
            }
        );
    }

    #[test]
    fn a_new_boot_starts_afresh_from_record_zero() {
        let mut s = Sequence::resume(Some(&saved("other-boot", 500)), BOOT);
        assert_eq!(s.admit(0), Admit::Write);
        assert_eq!(s.admit(1), Admit::Write);
        let mut s = Sequence::resume(None, BOOT);
        assert_eq!(s.admit(5), Admit::AfterLoss { first: 0, last: 4 });
    }

    #[test]
    fn without_state_everything_is_written() {
        let mut s = Sequence::fresh();
        assert_eq!(s.admit(700), Admit::Write);
        assert_eq!(
            s.admit(702),
            Admit::AfterLoss {
                first: 701,
                last: 701
            }
        );
        assert_eq!(s.admit(3), Admit::Write, "a sequence going back is written");
        assert_eq!(s.admit(4), Admit::Write);
        assert_eq!(
            s.admit(u64::MAX),
            Admit::AfterLoss {
                first: 5,
                last: u64::MAX - 1
            }
        );
        assert_eq!(s.admit(0), Admit::Write);
    }

    #[test]
    fn the_file_is_replaced_whole() {
        let scratch = crate::testutil::scratch::Scratch::new("kmsgstate");
        let dir = scratch.path();
        let file = StateFile::new(&dir.join("state"));
        assert_eq!(file.load().unwrap(), None);
        file.save(&saved(BOOT, 1)).unwrap();
        file.save(&saved(BOOT, 2)).unwrap();
        assert_eq!(file.load().unwrap(), Some(saved(BOOT, 2)));
        let names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["state"], "no temporary file is left");
        fs::write(dir.join("state"), "junk\n").unwrap();
        let err = file.load().unwrap_err().to_string();
        assert!(err.contains("not a klog-read state file"), "{err}");
        assert_eq!(
            StateFile::new(Path::new("state")).dir,
            PathBuf::from("."),
            "a bare name is in the current directory"
        );
    }

    #[test]
    fn the_keeper_saves_at_most_once_a_period() {
        let scratch = crate::testutil::scratch::Scratch::new("keeper");
        let dir = scratch.path();
        let path = dir.join("state");
        let mut keeper = Keeper::new(StateFile::new(&path), BOOT.to_string());
        assert_eq!(keeper.deadline(), None, "nothing to save");
        keeper.written(5);
        let now = Instant::now();
        assert!(keeper.deadline().is_some_and(|d| d <= Instant::now()));
        keeper.save_if_due(now);
        assert_eq!(StateFile::new(&path).load().unwrap(), Some(saved(BOOT, 5)));
        keeper.written(6);
        let due = keeper.deadline().unwrap();
        assert!(due > Instant::now(), "not again within the period");
        keeper.save_if_due(Instant::now());
        assert_eq!(StateFile::new(&path).load().unwrap(), Some(saved(BOOT, 5)));
        keeper.save_if_due(due);
        assert_eq!(StateFile::new(&path).load().unwrap(), Some(saved(BOOT, 6)));
        assert_eq!(keeper.deadline(), None);
    }

    #[test]
    fn the_boot_id_is_one_word() {
        let scratch = crate::testutil::scratch::Scratch::new("bootid");
        let dir = scratch.path();
        fs::write(dir.join("id"), format!("{BOOT}\n")).unwrap();
        assert_eq!(boot_id(&dir.join("id")).unwrap(), BOOT);
        fs::write(dir.join("id"), "two words\n").unwrap();
        assert!(boot_id(&dir.join("id")).is_err());
    }
}
