//! The OCI runtime: turns a bundle into a running, isolated process.
