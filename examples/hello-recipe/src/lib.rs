//! `hello`: an example rbuildout recipe plugin that writes a greeting file.
//!
//! ```toml
//! [greet]
//! recipe = "hello"
//! greeting = "hello"          # default "hello"
//! name = "world"              # default: the part's name
//! path = "greeting.txt"       # default "<part>.txt", relative to the buildout directory
//! ```
//!
//! It registers the file (the engine removes it when the part goes away or changes) and
//! publishes `${greet:file}` (its absolute path) and `${greet:text}` for later parts. Its
//! `update` rewrites the file if someone deleted or edited it.

use std::path::PathBuf;

use rbuildout_plugin_api::{Context, Error, Options, Recipe, Result, export_plugin};

pub struct Hello;

/// The file a part writes and what goes in it.
fn plan(options: &Options, ctx: &Context) -> (PathBuf, String) {
    let greeting = options.get("greeting").unwrap_or("hello");
    let name = options.get("name").unwrap_or(ctx.part());
    let default_path = format!("{}.txt", ctx.part());
    let path = ctx
        .buildout_directory()
        .join(options.get("path").unwrap_or(&default_path));
    (path, format!("{greeting}, {name}!\n"))
}

fn write(path: &PathBuf, text: &str) -> Result<()> {
    std::fs::write(path, text)
        .map_err(|e| Error::new(format!("cannot write {}: {e}", path.display())))
}

impl Recipe for Hello {
    const UPDATE: bool = true;

    fn install(options: &Options, ctx: &Context) -> Result<()> {
        let (path, text) = plan(options, ctx);
        write(&path, &text)?;
        ctx.register(&path)?;
        ctx.publish("file", &path.display().to_string())?;
        ctx.publish("text", text.trim_end())?;
        ctx.info(&format!("wrote {}", path.display()));
        Ok(())
    }

    fn update(options: &Options, ctx: &Context) -> Result<()> {
        let (path, text) = plan(options, ctx);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            ctx.warn(&format!("{} was changed; writing it again", path.display()));
            write(&path, &text)?;
        }
        ctx.publish("file", &path.display().to_string())?;
        ctx.publish("text", text.trim_end())
    }
}

export_plugin! {
    name: "hello",
    version: env!("CARGO_PKG_VERSION"),
    recipes: { "default" => Hello },
}

#[cfg(test)]
mod tests {
    use rbuildout_plugin_api::testing::{self, TestCall};

    use super::Hello;

    #[test]
    fn writes_registers_and_publishes() {
        let dir = tempfile::tempdir().unwrap();
        let call = TestCall::new("greet", dir.path(), &[("name", "world")]);
        let outcome = testing::install::<Hello>(&call).unwrap();
        let file = dir.path().join("greet.txt");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "hello, world!\n");
        assert_eq!(outcome.output("text"), Some("hello, world!"));
        assert_eq!(outcome.paths, [file]);
    }

    #[test]
    fn update_repairs_an_edited_file() {
        let dir = tempfile::tempdir().unwrap();
        let call = TestCall::new("greet", dir.path(), &[("greeting", "bonjour")]);
        testing::install::<Hello>(&call).unwrap();
        let file = dir.path().join("greet.txt");
        std::fs::write(&file, "vandalised").unwrap();
        let outcome = testing::update::<Hello>(&call).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "bonjour, greet!\n");
        assert!(outcome.logs[0].starts_with("WARN "), "{:?}", outcome.logs);
    }
}
