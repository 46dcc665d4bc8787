//! A scratch directory for a unit test: made empty, under the system's
//! temporary directory, named after the test and this process, and removed
//! when dropped.

use std::path::{Path, PathBuf};

pub struct Scratch(PathBuf);

impl Scratch {
    /// An empty directory `rill-unit-TAG-PID` (any older one is removed).
    pub fn new(tag: &str) -> Scratch {
        let path = std::env::temp_dir().join(format!("rill-unit-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a scratch directory");
        Scratch(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
