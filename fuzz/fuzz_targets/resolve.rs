//! One in-memory file loaded as `.cfg` and as TOML (defaults merged, `extends` not
//! followed), then everything `annotate` evaluates: parts and their order, every section
//! substituted, every option's history and references. Errors are fine; panics are not.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use rbuildout::config::{self, Format};

fn exercise(text: &str, name: &str, format: Format) {
    let Ok(config) = config::load_str(text, name, Path::new("/fuzz"), format) else {
        return;
    };
    let mut resolver = config.resolver();
    let _ = rbuildout::graph::parts(&config, &mut resolver);
    let names: Vec<String> = config.section_names().map(str::to_owned).collect();
    for section in &names {
        let Ok(options) = resolver.option_names(section) else {
            continue;
        };
        for option in &options {
            let _ = resolver.get(section, option);
            let _ = resolver.history(section, option);
            let _ = resolver.references(section, option);
        }
        let _ = resolver.check_section(section);
        if let Some(idx) = resolver.section_index(section) {
            let _ = resolver.reference_table(idx);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        exercise(text, "buildout.cfg", Format::Cfg);
        exercise(text, "buildout.toml", Format::Toml);
    }
});
