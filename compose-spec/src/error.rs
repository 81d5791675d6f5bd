//! The crate's error type: every variant names the file, and the line, column and YAML path
//! where they are known, so a person can find and fix the problem.

use std::path::PathBuf;

use crate::interpolation::InterpolationError;
use crate::yaml::{Location, ParseError};

/// Anything that can go wrong while loading a Compose project.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The YAML itself is malformed (syntax, duplicate keys, non-string keys, limits).
    #[error(transparent)]
    Yaml(#[from] ParseError),

    /// The merged tree does not decode into the typed model (wrong type, unknown key...).
    #[error(transparent)]
    Decode(#[from] crate::de::DecodeError),

    /// The model breaks a rule of the specification, or references something undefined.
    #[error(transparent)]
    Validation(#[from] crate::validate::ValidationError),

    /// Normalization could not read an `env_file` or `label_file`.
    #[error(transparent)]
    Normalize(#[from] crate::normalize::NormalizeError),

    /// A `$` expression could not be substituted.
    #[error("{loc}: {}", .source.at_path(.path))]
    Interpolation {
        /// Where the value is.
        loc: Location,
        /// The value's YAML path (`services.web.image`).
        path: String,
        /// What went wrong.
        source: InterpolationError,
    },

    /// An interpolated value could not be turned into the type the attribute needs.
    #[error("{loc}: error while interpolating {path}: failed to cast to expected type: {message}")]
    Cast {
        /// Where the value is.
        loc: Location,
        /// The value's YAML path.
        path: String,
        /// Why the cast failed.
        message: String,
    },

    /// A file could not be read.
    #[error("failed to read {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },

    /// A `.env` or `env_file` could not be parsed.
    #[error(transparent)]
    Dotenv(#[from] crate::dotenv::DotenvError),

    /// An env file given with `--env-file`, `COMPOSE_ENV_FILES` or `include.env_file` is missing.
    #[error("couldn't find env file: {}", .path.display())]
    EnvFileNotFound {
        /// The file.
        path: PathBuf,
    },

    /// No Compose file given and none found by discovery.
    #[error(
        "no configuration file provided: not found (looked for compose.yaml, compose.yml, docker-compose.yaml, docker-compose.yml in {} and its parents)",
        .dir.display()
    )]
    NoConfigFile {
        /// The directory discovery started from.
        dir: PathBuf,
    },

    /// The merged model has nothing in it.
    #[error("{file}: empty compose file")]
    EmptyFile {
        /// The first (main) file.
        file: String,
    },

    /// A document's root is a list or a scalar.
    #[error("{loc}: top-level object must be a mapping")]
    NotAMapping {
        /// Where the root is.
        loc: Location,
    },

    /// A value has a type the loader cannot work with at this path (before validation).
    #[error("{loc}: {path}: {message}")]
    Invalid {
        /// Where the value is.
        loc: Location,
        /// The value's YAML path.
        path: String,
        /// What is wrong.
        message: String,
    },

    /// A value has the wrong type for the specification (checked by the loader itself).
    #[error("{loc}: {message}")]
    Schema {
        /// Where the value is.
        loc: Location,
        /// What is wrong (`name must be a string`).
        message: String,
    },

    /// Two files disagree on the kind of a value (a mapping overridden by a list...).
    #[error("{loc}: cannot override {path}: {message}")]
    Merge {
        /// Where the overriding value is.
        loc: Location,
        /// The value's YAML path.
        path: String,
        /// What kinds clash.
        message: String,
    },

    /// `include` leads back to a file being included.
    #[error("include cycle detected:\n{}", .chain.join("\n include "))]
    IncludeCycle {
        /// The files, outermost first, ending with the repeated one.
        chain: Vec<String>,
    },

    /// `extends` leads back to a service being extended.
    #[error("Circular reference:\n{}", .chain.join("\n"))]
    ExtendsCycle {
        /// `service in file` lines, as compose-go prints them.
        chain: Vec<String>,
    },

    /// `extends` names a service or file that does not exist.
    #[error("{loc}: cannot extend service {service:?} in {file}: {message}")]
    Extends {
        /// Where the `extends` is.
        loc: Location,
        /// The extending service.
        service: String,
        /// The file holding the extending service.
        file: String,
        /// What is missing.
        message: String,
    },

    /// The services' dependencies form a cycle.
    #[error("dependency cycle detected: {}", .cycle.join(" -> "))]
    DependencyCycle {
        /// The services along the cycle, the first repeated at the end.
        cycle: Vec<String>,
    },

    /// A service depends on (links to, shares a namespace with...) a service that is not defined.
    #[error(
        "service {service:?} depends on undefined service {dependency:?} ({via}): invalid compose project"
    )]
    UndefinedDependency {
        /// The dependent service.
        service: String,
        /// The missing service.
        dependency: String,
        /// Which attribute made the dependency (`depends_on`, `links`, `network_mode`...).
        via: &'static str,
    },

    /// A required dependency is only defined under a profile that is not enabled.
    #[error(
        "service {dependency:?} is required by {service:?} but is disabled. Can be enabled by profiles [{}]",
        .profiles.join(" ")
    )]
    DisabledDependency {
        /// The dependent service.
        service: String,
        /// The disabled service.
        dependency: String,
        /// Profiles that would enable it.
        profiles: Vec<String>,
    },

    /// A service named on the command line does not exist.
    #[error("no such service: {0}")]
    NoSuchService(String),

    /// The project name is not acceptable.
    #[error(
        "invalid project name {0:?}: must consist only of lowercase alphanumeric characters, hyphens, and underscores as well as start with a letter or number"
    )]
    InvalidProjectName(String),

    /// No project name could be derived (from -p, the environment, `name`, or the directory).
    #[error("project name must not be empty")]
    EmptyProjectName,

    /// A path given to the loader is not usable (not UTF-8, a directory...).
    #[error("{}: {message}", .path.display())]
    Path {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
