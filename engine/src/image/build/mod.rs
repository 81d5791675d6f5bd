//! Image builds: the Dockerfile parser, Docker's word expansion, the builder, RUN in a real
//! container, and user names of an image.

pub mod builder;
pub mod context;
pub mod dockerfile;
pub mod run;
pub mod shell_words;
mod url;
pub mod users;
