//! Writing a log directory so that a writer killed at any instant loses
//! nothing and writes nothing twice: input cut into chunks (`split`), the
//! writer's state on disk (`writer_state`), the writer itself (`writer`),
//! archives finished off the input path (`finisher`), and processors run
//! at rotation (`processor`).

pub mod finisher;
pub mod processor;
pub mod split;
pub mod writer;
pub mod writer_state;
