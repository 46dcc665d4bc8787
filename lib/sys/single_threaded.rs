//! A promise that the process has one thread: what changing the environment
//! needs, and reading it through the C library (`tzset`), since glibc's
//! `setenv` and `unsetenv` race with any other thread's `getenv`.
//!
//! `main` makes the token first thing and hands it to the functions that
//! need it, so that their signatures say what they assume.

use std::marker::PhantomData;

/// Proof that no other thread exists. Not `Send`: it stays with `main`.
pub struct SingleThreaded(PhantomData<*const ()>);

impl SingleThreaded {
    /// # Safety
    ///
    /// No other thread exists, and none is started while the token is used:
    /// call it at the top of `main`, and use it before anything that could
    /// start a thread.
    pub unsafe fn promise() -> SingleThreaded {
        SingleThreaded(PhantomData)
    }
}
