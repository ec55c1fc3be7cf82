//! The built-in recipes: recipe crates linked into the binary and registered through their
//! ABI descriptors (docs/plugins.md, "Built-in recipes"). A plugin library of the same name
//! in `buildout:plugin-path` or `RBUILDOUT_PLUGIN_PATH` replaces one.

use rbuildout::plugin::Builtin;

/// Every built-in plugin, by the name configs use.
pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "activate",
        descriptor: rbuildout_recipe_activate::rbuildout_plugin_descriptor,
    },
    Builtin {
        name: "command",
        descriptor: rbuildout_recipe_command::rbuildout_plugin_descriptor,
    },
    Builtin {
        name: "egg",
        descriptor: rbuildout_recipe_egg::rbuildout_plugin_descriptor,
    },
    Builtin {
        name: "mkdir",
        descriptor: rbuildout_recipe_mkdir::rbuildout_plugin_descriptor,
    },
    Builtin {
        name: "scripts",
        descriptor: rbuildout_recipe_scripts::rbuildout_plugin_descriptor,
    },
    Builtin {
        name: "symlink",
        descriptor: rbuildout_recipe_symlink::rbuildout_plugin_descriptor,
    },
    Builtin {
        name: "template",
        descriptor: rbuildout_recipe_template::rbuildout_plugin_descriptor,
    },
];
