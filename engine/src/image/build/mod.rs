//! Image builds. So far: the Dockerfile parser and Docker's word expansion; the builder
//! that executes the steps is still to come.

pub mod builder;
pub mod dockerfile;
pub mod shell_words;
