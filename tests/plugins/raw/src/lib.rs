//! `raw`: a plugin written against the bare v1 ABI, without the SDK, that breaks the rules on
//! purpose so the host's defences can be tested.
//!
//! Its descriptor claims ABI 1.5 and is larger than v1.0's (fields a newer SDK would have
//! appended), and it is not flagged thread-safe. Recipes:
//!
//! | recipe | does |
//! |---|---|
//! | `invalid-utf8-path` | registers the bytes `bad\xff\xfe` as a path, returns OK |
//! | `invalid-utf8-output` | publishes an output whose value is not UTF-8 |
//! | `invalid-utf8-error` | fails with a message that is not UTF-8 |
//! | `null-path` | registers a null pointer with a length |
//! | `huge-error` | fails with a 16 MiB message |
//! | `unknown-status` | returns status 77 |
//! | `no-message` | returns ERROR without a message |
//! | `old-vtable` | a vtable whose `struct_size` ends after `install`; the slots after it hold a function that aborts |
//! | `overlap` | fails if another call into this plugin is running (the host must serialise them) |
//! | `echo` | publishes each option back, `nul` = whether every string the host passed ends in NUL, and `order` = the option names in the order received |

use std::mem::{offset_of, size_of};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rbuildout_plugin_api::abi::{self, Call, PluginDescriptor, RecipeEntry, RecipeVTable, Str};

/// A descriptor from a newer minor version: v1.0's fields, then one more.
#[repr(C)]
pub struct DescriptorV1_5 {
    base: PluginDescriptor,
    appended: u64,
}

const fn vtable(install: abi::RecipeFn) -> RecipeVTable {
    RecipeVTable {
        struct_size: size_of::<RecipeVTable>(),
        install: Some(install),
        update: None,
        uninstall: None,
        prepare: None,
    }
}

/// # Safety
/// `call` is the host's valid call.
unsafe fn call<'a>(call: *const Call) -> &'a Call {
    // SAFETY: the host passes a valid call for the duration of the recipe function.
    unsafe { &*call }
}

fn bytes(b: &'static [u8]) -> Str {
    Str {
        ptr: b.as_ptr(),
        len: b.len(),
    }
}

unsafe extern "C" fn invalid_utf8_path(c: *const Call) -> i32 {
    // SAFETY: see `call`.
    let c = unsafe { call(c) };
    // SAFETY: the host's callback with its ctx.
    unsafe { (c.add_path.unwrap())(c.ctx, bytes(b"bad\xff\xfe")) };
    abi::OK
}

unsafe extern "C" fn invalid_utf8_output(c: *const Call) -> i32 {
    // SAFETY: see `call`.
    let c = unsafe { call(c) };
    // SAFETY: the host's callback with its ctx.
    unsafe { (c.set_output.unwrap())(c.ctx, Str::new("name"), bytes(b"\xc3\x28")) };
    abi::OK
}

unsafe extern "C" fn invalid_utf8_error(c: *const Call) -> i32 {
    // SAFETY: see `call`.
    let c = unsafe { call(c) };
    // SAFETY: the host's callback with its ctx.
    unsafe { (c.set_error.unwrap())(c.ctx, bytes(b"broken \xff message")) };
    abi::ERROR
}

unsafe extern "C" fn null_path(c: *const Call) -> i32 {
    // SAFETY: see `call`.
    let c = unsafe { call(c) };
    let null = Str {
        ptr: std::ptr::null(),
        len: 5,
    };
    // SAFETY: the host's callback with its ctx; the host must refuse the null pointer.
    unsafe { (c.add_path.unwrap())(c.ctx, null) };
    abi::OK
}

unsafe extern "C" fn huge_error(c: *const Call) -> i32 {
    // SAFETY: see `call`.
    let c = unsafe { call(c) };
    let message = "x".repeat(16 << 20);
    // SAFETY: the host's callback with its ctx.
    unsafe { (c.set_error.unwrap())(c.ctx, Str::new(&message)) };
    abi::ERROR
}

unsafe extern "C" fn unknown_status(_c: *const Call) -> i32 {
    77
}

unsafe extern "C" fn no_message(_c: *const Call) -> i32 {
    abi::ERROR
}

unsafe extern "C" fn old_install(c: *const Call) -> i32 {
    // SAFETY: see `call`.
    let c = unsafe { call(c) };
    // SAFETY: the host's callback with its ctx.
    unsafe { (c.set_output.unwrap())(c.ctx, Str::new("installed"), Str::new("yes")) };
    abi::OK
}

/// Never called: the host must not read slots beyond the vtable's `struct_size`.
unsafe extern "C" fn must_not_be_called(_c: *const Call) -> i32 {
    std::process::abort()
}

static IN_CALL: AtomicBool = AtomicBool::new(false);

unsafe extern "C" fn overlap(c: *const Call) -> i32 {
    // SAFETY: see `call`.
    let c = unsafe { call(c) };
    if IN_CALL.swap(true, Ordering::SeqCst) {
        // SAFETY: the host's callback with its ctx.
        unsafe { (c.set_error.unwrap())(c.ctx, Str::new("two calls overlapped")) };
        return abi::ERROR;
    }
    std::thread::sleep(Duration::from_millis(30));
    IN_CALL.store(false, Ordering::SeqCst);
    abi::OK
}

unsafe extern "C" fn echo(c: *const Call) -> i32 {
    // SAFETY: see `call`.
    let c = unsafe { call(c) };
    // SAFETY: the host passes `option_count` options.
    let options = unsafe { std::slice::from_raw_parts(c.options, c.option_count) };
    let ends_in_nul = |s: Str| {
        // SAFETY: the host promises a NUL after each string it passes.
        unsafe { *s.ptr.add(s.len) == 0 }
    };
    let mut nul = ends_in_nul(c.part) && ends_in_nul(c.buildout_directory);
    for kv in options {
        nul &= ends_in_nul(kv.key) && ends_in_nul(kv.value);
        // SAFETY: the host's callback with its ctx and its own strings.
        unsafe { (c.set_output.unwrap())(c.ctx, kv.key, kv.value) };
    }
    let order: Vec<String> = options
        .iter()
        .map(|kv| {
            // SAFETY: the host passes readable option names.
            let key = unsafe { kv.key.as_bytes() };
            String::from_utf8_lossy(key.unwrap_or_default()).into_owned()
        })
        .collect();
    let order = order.join(" ");
    // SAFETY: the host's callback with its ctx.
    unsafe { (c.set_output.unwrap())(c.ctx, Str::new("order"), Str::new(&order)) };
    let answer = if nul { "true" } else { "false" };
    // SAFETY: the host's callback with its ctx.
    unsafe { (c.set_output.unwrap())(c.ctx, Str::new("nul"), Str::new(answer)) };
    abi::OK
}

static INVALID_UTF8_PATH: RecipeVTable = vtable(invalid_utf8_path);
static INVALID_UTF8_OUTPUT: RecipeVTable = vtable(invalid_utf8_output);
static INVALID_UTF8_ERROR: RecipeVTable = vtable(invalid_utf8_error);
static NULL_PATH: RecipeVTable = vtable(null_path);
static HUGE_ERROR: RecipeVTable = vtable(huge_error);
static UNKNOWN_STATUS: RecipeVTable = vtable(unknown_status);
static NO_MESSAGE: RecipeVTable = vtable(no_message);
static OVERLAP: RecipeVTable = vtable(overlap);
static ECHO: RecipeVTable = vtable(echo);
static OLD_VTABLE: RecipeVTable = RecipeVTable {
    struct_size: offset_of!(RecipeVTable, update),
    install: Some(old_install),
    update: Some(must_not_be_called),
    uninstall: Some(must_not_be_called),
    prepare: Some(must_not_be_called),
};

const fn entry(name: &'static str, vtable: &'static RecipeVTable) -> RecipeEntry {
    RecipeEntry {
        name: Str::new(name),
        vtable,
    }
}

static RECIPES: [RecipeEntry; 10] = [
    entry("invalid-utf8-path", &INVALID_UTF8_PATH),
    entry("invalid-utf8-output", &INVALID_UTF8_OUTPUT),
    entry("invalid-utf8-error", &INVALID_UTF8_ERROR),
    entry("null-path", &NULL_PATH),
    entry("huge-error", &HUGE_ERROR),
    entry("unknown-status", &UNKNOWN_STATUS),
    entry("no-message", &NO_MESSAGE),
    entry("old-vtable", &OLD_VTABLE),
    entry("overlap", &OVERLAP),
    entry("echo", &ECHO),
];

static DESCRIPTOR: DescriptorV1_5 = DescriptorV1_5 {
    base: PluginDescriptor {
        magic: abi::MAGIC,
        abi_major: 1,
        abi_minor: 6,
        flags: 0,
        struct_size: size_of::<DescriptorV1_5>(),
        name: Str::new("raw"),
        version: Str::new("0.0.1"),
        built_with: Str::new("hand-written"),
        init: None,
        recipes: &RECIPES as *const [RecipeEntry; 10] as *const RecipeEntry,
        recipe_count: 10,
        run_end: None,
    },
    appended: 0x5eed,
};

/// The entry symbol, returning the larger-than-v1.0 descriptor.
#[unsafe(no_mangle)]
pub extern "C" fn rbuildout_plugin_v1() -> *const PluginDescriptor {
    &DESCRIPTOR as *const DescriptorV1_5 as *const PluginDescriptor
}
