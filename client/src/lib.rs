//! The Docker Engine API client.
