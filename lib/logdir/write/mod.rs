//! Writing a log directory so that a writer killed at any instant loses
//! nothing and writes nothing twice: input cut into chunks (`split`), the
//! writer's state on disk (`writer_state`), the writer itself (`writer`),
//! archives finished off the input path (`finisher`), processors run
//! at rotation (`processor`), and seals made as it goes (`sealing`).

pub mod finisher;
pub mod processor;
pub mod sealing;
pub mod split;
pub mod writer;
pub mod writer_state;
