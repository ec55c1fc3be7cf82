//! The safe SDK: the [`Recipe`] trait, the [`Options`] and [`Context`] a recipe works with,
//! its [`Error`] type, the [`files`] chores, and the machinery behind
//! [`export_plugin!`](crate::export_plugin).

pub(crate) mod bridge;
mod buildout;
mod context;
#[cfg(unix)]
pub mod develop;
mod export;
#[cfg(unix)]
pub mod files;
mod options;
#[cfg(all(unix, feature = "testing"))]
pub mod testing;
#[cfg(test)]
mod tests;

pub use buildout::Buildout;

/// Whether `name` is a name `${section:name}` can spell (SPEC §2.3): letters, digits, `-`,
/// `.`, `_` and spaces, not empty. Option references and recipe outputs follow it.
pub fn is_substitution_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-. _".contains(&c))
}
pub use context::Context;
pub use options::{Options, parse_size};

#[doc(hidden)]
pub mod private {
    //! Used by the expansion of `export_plugin!`; not part of the public API.
    pub use super::export::{Export, init, run_end};
}

/// What a plugin's run-end hook (`run_end:` in [`export_plugin!`](crate::export_plugin)) is
/// told: a run has finished with its parts. Called once per run (a nested build is a run of
/// its own) for every plugin the run loaded, whether or not its recipes were used.
#[derive(Debug, Clone, Copy)]
pub struct RunEnd<'a> {
    /// The buildout directory of the run: the [`Context::buildout_directory`] its parts'
    /// calls had.
    pub directory: &'a std::path::Path,
    /// Whether every part was installed (`false`: a part failed or the run was stopped).
    pub ok: bool,
}

use std::fmt;

/// A recipe: what to do when a part that uses it is installed, updated or uninstalled.
///
/// Implement it on a unit struct and list that struct in
/// [`export_plugin!`](crate::export_plugin). The functions get the part's resolved options
/// and a [`Context`] to report what they did. They may be called from several threads at once
/// (for different parts), so any shared state must be thread-safe, as safe Rust ensures.
///
/// `update` and `uninstall` are optional: set [`UPDATE`](Recipe::UPDATE) or
/// [`UNINSTALL`](Recipe::UNINSTALL) to `true` when you write them, otherwise the host knows the
/// recipe has no such hook (and, for instance, never calls anything for an unchanged part).
pub trait Recipe {
    /// Whether [`update`](Recipe::update) is implemented.
    const UPDATE: bool = false;
    /// Whether [`uninstall`](Recipe::uninstall) is implemented.
    const UNINSTALL: bool = false;
    /// Whether [`prepare`](Recipe::prepare) is implemented (ABI 1.4).
    const PREPARE: bool = false;

    /// Installs the part: creates what it describes, [registers](Context::register) every
    /// path it creates so the engine can remove it later, and
    /// [publishes](Context::publish) outputs other parts may reference.
    fn install(options: &Options, ctx: &Context) -> Result<()>;

    /// Runs on every build in which the part is unchanged (same options, same recipe). Paths
    /// it registers are added to the part's.
    fn update(options: &Options, ctx: &Context) -> Result<()> {
        let _ = (options, ctx);
        Ok(())
    }

    /// Runs before the engine removes the part's registered paths; `options` are the ones
    /// the part was installed with.
    fn uninstall(options: &Options, ctx: &Context) -> Result<()> {
        let _ = (options, ctx);
        Ok(())
    }

    /// Runs for a part the build will install, before the build uninstalls or installs
    /// anything, as zc.buildout creates every part's recipe first: outputs it
    /// [publishes](Context::publish) are visible at once to the parts after it and to every
    /// install (a recipe that computes a `location` others read). It may not register
    /// paths; [`install`](Recipe::install) follows in the part's turn. Not called for an
    /// unchanged part (its recorded outputs stand), nor for one whose options refer to an
    /// output only an install publishes (it is installed without).
    fn prepare(options: &Options, ctx: &Context) -> Result<()> {
        let _ = (options, ctx);
        Ok(())
    }
}

/// The result type of recipe functions.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a recipe failed: a message for the user, reported by the host against the part.
///
/// Any standard error converts into it with `?` (its sources are appended), but a message
/// that says which file or option was involved is far more useful:
/// `Error::new(format!("cannot write {}: {e}", path.display()))`.
pub struct Error {
    message: String,
}

impl Error {
    /// An error with this message (lowercase, no trailing period, by convention).
    pub fn new(message: impl Into<String>) -> Error {
        Error {
            message: message.into(),
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl<E: std::error::Error> From<E> for Error {
    fn from(error: E) -> Error {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        Error::new(message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.message, f)
    }
}
