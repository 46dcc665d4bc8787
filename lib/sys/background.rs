//! Work that must not slow the thread that reads the input: a thread that
//! only catches up (hashing what was written) runs at a lower priority, so
//! that on a busy machine the scheduler gives the input thread a core
//! first, and the background thread the time left.

/// The nice value such a thread takes (the process's others keep theirs).
const BACKGROUND_NICE: i32 = 10;

/// Lowers the calling thread's priority (Linux: nice applies to one
/// thread). Failing to do so only costs speed: not reported.
pub fn lower_this_thread() {
    let tid = rustix::thread::gettid();
    let _ = rustix::process::setpriority_process(Some(tid), BACKGROUND_NICE);
}
