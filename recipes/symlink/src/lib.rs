//! The `symlink` recipe (SPEC §5). Scaffold: replaced by the real recipe.

use rbuildout_plugin_api::{Context, Error, Options, Recipe, Result, export_plugin};

/// Not written yet: fails every install with a message saying so.
pub struct Scaffold;

impl Recipe for Scaffold {
    fn install(_options: &Options, _ctx: &Context) -> Result<()> {
        Err(Error::new("the symlink recipe is not written yet"))
    }
}

export_plugin! {
    name: "symlink",
    version: env!("CARGO_PKG_VERSION"),
    recipes: { "default" => Scaffold },
}
