//! Checks that `include/rbuildout_plugin.h` matches [`crate::abi`]: gcc compiles a program
//! printing the size, alignment and every field's offset and size of each C struct, and the
//! constants; each must equal what Rust computes.

use std::collections::BTreeMap;
use std::mem::{align_of, offset_of, size_of};
use std::path::Path;
use std::process::Command;

use crate::abi::*;

/// One line per fact, `name value`, in the C program's order.
struct Layout {
    rust: BTreeMap<String, u64>,
    c_program: String,
}

impl Layout {
    fn fact(&mut self, name: String, value: u64, c_expr: String) {
        self.c_program.push_str(&format!(
            "    printf(\"{name} %llu\\n\", (unsigned long long)({c_expr}));\n"
        ));
        self.rust.insert(name, value);
    }
}

fn size_of_field<T, F>(_: fn(&T) -> &F) -> usize {
    size_of::<F>()
}

/// Records a struct's facts. The pattern in `complete` does not compile unless every field
/// of the Rust struct is listed, so no field can be forgotten here.
macro_rules! record {
    ($layout:ident, $rust:ident => $c:literal { $($field:ident),* $(,)? }) => {{
        #[allow(dead_code)]
        fn complete(v: &$rust) {
            let $rust { $($field: _),* } = v;
        }
        $layout.fact(format!("{}.size", $c), size_of::<$rust>() as u64, format!("sizeof({})", $c));
        $layout.fact(format!("{}.align", $c), align_of::<$rust>() as u64, format!("_Alignof({})", $c));
        $(
            $layout.fact(
                format!("{}.{}.offset", $c, stringify!($field)),
                offset_of!($rust, $field) as u64,
                format!("offsetof({}, {})", $c, stringify!($field)),
            );
            $layout.fact(
                format!("{}.{}.size", $c, stringify!($field)),
                size_of_field(|s: &$rust| &s.$field) as u64,
                format!("sizeof((({} *)0)->{})", $c, stringify!($field)),
            );
        )*
    }};
}

macro_rules! constant {
    ($layout:ident, $rust:expr, $c:literal) => {
        $layout.fact($c.to_owned(), $rust as u64, $c.to_owned())
    };
}

fn layout() -> Layout {
    let mut l = Layout {
        rust: BTreeMap::new(),
        c_program: String::new(),
    };
    record!(l, Str => "rb_str" { ptr, len });
    record!(l, KeyValue => "rb_key_value" { key, value });
    record!(l, HostApi => "rb_host_api" { struct_size, abi_major, abi_minor, max_level, ctx, log });
    record!(l, Call => "rb_call" {
        struct_size, ctx, part, buildout_directory, flags, options, option_count, log,
        add_path, set_output, set_error, get_option, nested_build, cancelled, owns,
        option_names, progress,
    });
    record!(l, RecipeVTable => "rb_recipe_vtable" { struct_size, install, update, uninstall, prepare });
    record!(l, RecipeEntry => "rb_recipe_entry" { name, vtable });
    record!(l, PluginDescriptor => "rb_plugin_descriptor" {
        magic, abi_major, abi_minor, flags, struct_size, name, version, built_with, init,
        recipes, recipe_count, run_end,
    });
    record!(l, RunEnd => "rb_run_end" { struct_size, directory, status });
    constant!(l, MAGIC, "RB_MAGIC");
    constant!(l, ABI_MAJOR, "RB_ABI_MAJOR");
    constant!(l, ABI_MINOR, "RB_ABI_MINOR");
    constant!(l, CALL_SIZE_1_0, "RB_CALL_SIZE_1_0");
    constant!(l, CALL_SIZE_1_1, "RB_CALL_SIZE_1_1");
    constant!(l, CALL_SIZE_1_2, "RB_CALL_SIZE_1_2");
    constant!(l, PROGRESS_COUNT, "RB_PROGRESS_COUNT");
    constant!(l, PROGRESS_BYTES, "RB_PROGRESS_BYTES");
    constant!(l, DESCRIPTOR_SIZE_1_0, "RB_DESCRIPTOR_SIZE_1_0");
    constant!(l, OK, "RB_OK");
    constant!(l, ERROR, "RB_ERROR");
    constant!(l, PANIC, "RB_PANIC");
    constant!(l, UNSUPPORTED, "RB_UNSUPPORTED");
    constant!(l, NOT_FOUND, "RB_NOT_FOUND");
    constant!(l, FLAG_THREAD_SAFE, "RB_FLAG_THREAD_SAFE");
    constant!(l, FLAG_PANIC_ABORT, "RB_FLAG_PANIC_ABORT");
    constant!(l, CALL_OFFLINE, "RB_CALL_OFFLINE");
    constant!(l, CALL_NEWEST, "RB_CALL_NEWEST");
    constant!(l, CALL_LOCKED, "RB_CALL_LOCKED");
    constant!(l, LEVEL_ERROR, "RB_LEVEL_ERROR");
    constant!(l, LEVEL_WARN, "RB_LEVEL_WARN");
    constant!(l, LEVEL_INFO, "RB_LEVEL_INFO");
    constant!(l, LEVEL_DEBUG, "RB_LEVEL_DEBUG");
    constant!(l, LEVEL_TRACE, "RB_LEVEL_TRACE");
    l
}

#[test]
fn c_header_matches_rust_layout() {
    let layout = layout();
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("layout.c");
    let program = format!(
        "#include <stdio.h>\n#include \"rbuildout_plugin.h\"\nint main(void) {{\n{}    return 0;\n}}\n",
        layout.c_program
    );
    std::fs::write(&source, program).unwrap();
    let exe = dir.path().join("layout");
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("include");
    let status = Command::new("gcc")
        .args(["-std=c11", "-Wall", "-Werror", "-I"])
        .arg(&include)
        .arg(&source)
        .arg("-o")
        .arg(&exe)
        .status()
        .expect("gcc runs");
    assert!(status.success(), "the layout program does not compile");
    let output = Command::new(&exe).output().unwrap();
    assert!(output.status.success());
    let c: BTreeMap<String, u64> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let (name, value) = line.rsplit_once(' ').unwrap();
            (name.to_owned(), value.parse().unwrap())
        })
        .collect();
    assert_eq!(c.len(), layout.rust.len());
    let differences: Vec<String> = layout
        .rust
        .iter()
        .filter(|(name, value)| c.get(*name) != Some(value))
        .map(|(name, value)| format!("{name}: rust {value}, c {:?}", c.get(name)))
        .collect();
    assert!(
        differences.is_empty(),
        "header and abi.rs differ:\n{}",
        differences.join("\n")
    );
}

#[test]
fn has_field_reads_struct_size() {
    let v1 = size_of::<RecipeVTable>();
    assert!(crate::has_field!(RecipeVTable, uninstall, v1));
    // A vtable from a plugin that only knew `struct_size` and `install`.
    let old = offset_of!(RecipeVTable, update);
    assert!(crate::has_field!(RecipeVTable, install, old));
    assert!(!crate::has_field!(RecipeVTable, update, old));
    assert!(!crate::has_field!(RecipeVTable, uninstall, old));
}
