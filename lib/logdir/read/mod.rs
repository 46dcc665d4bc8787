//! Reading log directories: one directory's lines in order across its
//! archives (`reader`, compressed archives included), several merged by
//! stamp (`merge`), and followed through durable cursors (`cursor`,
//! `follow`, `ledger`); a sealed one verified (`verify`).

pub mod compressed;
pub mod cursor;
pub mod follow;
pub mod ledger;
pub mod merge;
pub mod reader;
pub mod verify;
