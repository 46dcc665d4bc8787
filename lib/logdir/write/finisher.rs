//! Finishing archives off the input path. At rotation `current` is renamed
//! at once to `@stamp.u` and logging goes on in a new `current`; this thread
//! then writes the file out (fsync), marks it finished (0744), renames it
//! `@stamp.s` and writes the directory out. A crash at any point leaves each
//! line in exactly one file, and a file not yet written out keeps the name
//! that says so (`.u`). The input never waits for the disk at a rotation,
//! unless the disk falls more than a few rotations behind.

use std::os::fd::OwnedFd;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use rustix::fs::{self, Mode};
use rustix::io::Errno;

use crate::cli;
use crate::logdir::MODE_FINISHED;

/// One archive to finish.
pub struct Job {
    /// The log directory, for messages.
    pub dir_name: String,
    pub dir: OwnedFd,
    pub file: OwnedFd,
    /// `@stamp.u`, to be renamed `to` (`@stamp.s`).
    pub from: String,
    pub to: String,
}

pub struct Finisher {
    jobs: Option<SyncSender<Job>>,
    thread: Option<JoinHandle<()>>,
}

/// Rotations that may wait to be finished before a rotation waits.
const QUEUE: usize = 4;

impl Finisher {
    pub fn start() -> std::io::Result<Finisher> {
        let (jobs, queue) = sync_channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("finisher".into())
            .spawn(move || run(queue))?;
        Ok(Finisher {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Queues a job; waits if the queue is full.
    pub fn finish(&self, job: Job) {
        if let Some(Err(job)) = self.jobs.as_ref().map(|jobs| jobs.send(job)) {
            // The thread is gone (it cannot panic by design): finish here.
            finish(job.0);
        }
    }

    /// Waits until every queued archive is finished.
    pub fn stop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Finisher {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(queue: Receiver<Job>) {
    for job in queue {
        finish(job);
    }
}

/// Each step is retried until it succeeds: the file is in the page cache
/// meanwhile, and a `.u` name is the truth until it is written out.
fn finish(job: Job) {
    let what = |step: &str| format!("{}/{}: {step}", job.dir_name, job.from);
    retry(&what("fsync"), || fs::fsync(&job.file));
    retry(&what("chmod"), || {
        fs::fchmod(&job.file, Mode::from_raw_mode(MODE_FINISHED))
    });
    drop(job.file);
    let renamed = retry(&what("rename"), || {
        match fs::renameat(&job.dir, &job.from, &job.dir, &job.to) {
            // Deleted by the size cap before it was finished: nothing to do.
            Err(Errno::NOENT) => Err(Errno::NOENT),
            other => other,
        }
    });
    if renamed {
        retry(&format!("{}: fsync", job.dir_name), || fs::fsync(&job.dir));
    }
}

/// Runs `step` until it succeeds (true) or finds the file gone (false),
/// saying once that it fails.
fn retry(what: &str, mut step: impl FnMut() -> rustix::io::Result<()>) -> bool {
    let mut delay = Duration::from_millis(100);
    let mut said = false;
    loop {
        match step() {
            Ok(()) => return true,
            Err(Errno::NOENT) => return false,
            Err(Errno::INTR) => continue,
            Err(e) => {
                if !said {
                    cli::warn(&format!("{what}: {}; retrying", std::io::Error::from(e)));
                    said = true;
                }
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}
