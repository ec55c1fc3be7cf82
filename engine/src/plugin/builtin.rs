//! Recipes linked into the binary: the built-in recipes, reached through the same ABI
//! descriptor a plugin library exports, without `dlopen`.

use rbuildout_plugin_api::abi::PluginDescriptor;
use sha2::{Digest, Sha256};

/// A recipe crate linked into the binary, registered by its descriptor.
#[derive(Debug)]
pub struct Builtin {
    /// The name configs use, as the file name `librbuildout_recipe_<name>.so` gives it for a
    /// library.
    pub name: &'static str,
    /// The crate's descriptor: `rbuildout_plugin_descriptor`, which `export_plugin!` writes
    /// beside the C symbol `rbuildout_plugin_v1`.
    pub descriptor: fn() -> *const PluginDescriptor,
}

/// The digest a built-in plugin records in the state in place of a library file's sha256:
/// the sha256 of rbuildout's version and the plugin's name and version. A new rbuildout
/// version reinstalls the parts of its built-in recipes, as a rebuilt plugin file does.
pub(super) fn digest(plugin: &str, version: &str) -> String {
    let identity = format!(
        "rbuildout {} built-in {plugin} {version}",
        env!("CARGO_PKG_VERSION")
    );
    Sha256::digest(identity.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
