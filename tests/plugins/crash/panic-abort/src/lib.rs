//! A recipe that panics in a plugin built with `panic = "abort"`: the SDK's panic hook must
//! send the message and location to the host before the process aborts.

use rbuildout_plugin_api::{Context, Options, Recipe, Result};

/// `panicabort:panic`: panics with the option `message`.
pub struct Panic;

impl Recipe for Panic {
    fn install(options: &Options, _ctx: &Context) -> Result<()> {
        let message = options.get("message").unwrap_or("no message");
        panic!("{message}");
    }
}

rbuildout_plugin_api::export_plugin! {
    name: "panicabort",
    recipes: { "panic" => Panic },
}
