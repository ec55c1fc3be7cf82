//! Runs a recipe in-process, through the same `extern "C"` entry points the host calls, with
//! a small host that records what the recipe reports: unit tests for recipes without
//! building a library or running rbuildout.

use std::collections::HashMap;
use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::Recipe;
use super::export::Export;
use super::files::normalize;
use crate::abi::{self, KeyValue, RecipeFn, Str};

/// One call to run: the part, its options, and what the fake host answers.
#[derive(Clone, Debug, Default)]
pub struct TestCall {
    pub part: String,
    pub buildout_directory: PathBuf,
    pub offline: bool,
    pub newest: bool,
    pub locked: bool,
    /// The part's options.
    pub options: Vec<(String, String)>,
    /// What [`Context::option`](crate::Context::option) finds, by `(section, option)`.
    pub other_options: HashMap<(String, String), String>,
    /// When set, nested builds fail with this message.
    pub nested_error: Option<String>,
    /// What [`Context::cancelled`](crate::Context::cancelled) says.
    pub cancelled: bool,
    /// The paths the state recorded for the part before the call (relative to the buildout
    /// directory, or absolute): what [`Context::owns`](crate::Context::owns) finds.
    pub owned: Vec<PathBuf>,
    /// Acts as a host of ABI 1.0, whose call ends before `owns`.
    pub abi_1_0: bool,
}

impl TestCall {
    /// A call for `part` in the instance `directory` with these options.
    pub fn new(part: &str, directory: &Path, options: &[(&str, &str)]) -> TestCall {
        TestCall {
            part: part.to_owned(),
            buildout_directory: directory.to_path_buf(),
            options: options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..TestCall::default()
        }
    }
}

/// What the recipe reported.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub paths: Vec<PathBuf>,
    /// In publishing order (a repeated name appears twice).
    pub outputs: Vec<(String, String)>,
    /// `LEVEL message` lines, for example `INFO wrote x`.
    pub logs: Vec<String>,
    /// `(config, directory)` of each nested build asked for.
    pub nested: Vec<(PathBuf, PathBuf)>,
}

impl Outcome {
    /// The last value published for `name`.
    pub fn output(&self, name: &str) -> Option<&str> {
        self.outputs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why the call failed: the message, and whether it was a panic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    pub panicked: bool,
    /// What the recipe reported before failing.
    pub outcome: Box<Outcome>,
}

/// Runs `R::install`.
pub fn install<R: Recipe>(call: &TestCall) -> Result<Outcome, Failure> {
    run(Export::<R>::VTABLE.install, call)
}

/// Runs `R::update` (an error if `R::UPDATE` is false).
pub fn update<R: Recipe>(call: &TestCall) -> Result<Outcome, Failure> {
    run(Export::<R>::VTABLE.update, call)
}

/// Runs `R::uninstall` (an error if `R::UNINSTALL` is false).
pub fn uninstall<R: Recipe>(call: &TestCall) -> Result<Outcome, Failure> {
    run(Export::<R>::VTABLE.uninstall, call)
}

struct State<'a> {
    call: &'a TestCall,
    outcome: Mutex<Outcome>,
    error: Mutex<Option<String>>,
    lent: Mutex<Vec<Box<[u8]>>>,
}

fn run(function: Option<RecipeFn>, call: &TestCall) -> Result<Outcome, Failure> {
    let Some(function) = function else {
        return Err(Failure {
            message: "the recipe does not implement this hook".into(),
            panicked: false,
            outcome: Box::default(),
        });
    };
    let state = State {
        call,
        outcome: Mutex::default(),
        error: Mutex::default(),
        lent: Mutex::default(),
    };
    let owned: Vec<(Vec<u8>, Vec<u8>)> = call
        .options
        .iter()
        .map(|(k, v)| (nul_terminated(k), nul_terminated(v)))
        .collect();
    let options: Vec<KeyValue> = owned
        .iter()
        .map(|(k, v)| KeyValue {
            key: text_of(k),
            value: text_of(v),
        })
        .collect();
    let part = nul_terminated(&call.part);
    let directory = nul_terminated(&call.buildout_directory.to_string_lossy());
    let raw = abi::Call {
        struct_size: if call.abi_1_0 {
            abi::CALL_SIZE_1_0
        } else {
            std::mem::size_of::<abi::Call>()
        },
        ctx: &state as *const State as *mut c_void,
        part: text_of(&part),
        buildout_directory: text_of(&directory),
        flags: if call.offline { abi::CALL_OFFLINE } else { 0 }
            | if call.newest { abi::CALL_NEWEST } else { 0 }
            | if call.locked { abi::CALL_LOCKED } else { 0 },
        options: options.as_ptr(),
        option_count: options.len(),
        log: Some(log),
        add_path: Some(add_path),
        set_output: Some(set_output),
        set_error: Some(set_error),
        get_option: Some(get_option),
        nested_build: Some(nested_build),
        cancelled: Some(cancelled),
        owns: Some(owns),
    };
    // SAFETY: `function` is the SDK's own guard for `R`; `raw` and all it points to outlive
    // the call.
    let status = unsafe { function(&raw) };
    let outcome = state
        .outcome
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    let message = state.error.into_inner().unwrap_or_else(|e| e.into_inner());
    match status {
        abi::OK => Ok(outcome),
        status => Err(Failure {
            message: message.unwrap_or_default(),
            panicked: status == abi::PANIC,
            outcome: Box::new(outcome),
        }),
    }
}

fn nul_terminated(text: &str) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    bytes.push(0);
    bytes
}

/// The text of a NUL-terminated buffer, without the NUL.
fn text_of(bytes: &[u8]) -> Str {
    Str {
        ptr: bytes.as_ptr(),
        len: bytes.len() - 1,
    }
}

/// # Safety
/// `ctx` must be the `State` of the running call and `s` a string the SDK passed.
unsafe fn read<'a>(ctx: *mut c_void, s: Str) -> (&'a State<'a>, String) {
    // SAFETY: the ctx is ours; the SDK passes valid UTF-8 it keeps alive for the callback.
    unsafe {
        let state = &*(ctx as *const State);
        let bytes = s.as_bytes().unwrap_or_default();
        (state, String::from_utf8_lossy(bytes).into_owned())
    }
}

unsafe extern "C" fn log(ctx: *mut c_void, level: u32, _target: Str, message: Str) {
    // SAFETY: called by the SDK during the call.
    let (state, message) = unsafe { read(ctx, message) };
    let level = ["OFF", "ERROR", "WARN", "INFO", "DEBUG", "TRACE"]
        .get(level as usize)
        .unwrap_or(&"TRACE");
    if let Ok(mut outcome) = state.outcome.lock() {
        outcome.logs.push(format!("{level} {message}"));
    }
}

unsafe extern "C" fn add_path(ctx: *mut c_void, path: Str) -> i32 {
    // SAFETY: called by the SDK during the call.
    let (state, path) = unsafe { read(ctx, path) };
    if let Ok(mut outcome) = state.outcome.lock() {
        outcome.paths.push(PathBuf::from(path));
    }
    abi::OK
}

unsafe extern "C" fn set_output(ctx: *mut c_void, name: Str, value: Str) -> i32 {
    // SAFETY: called by the SDK during the call.
    let (state, name) = unsafe { read(ctx, name) };
    // SAFETY: as above.
    let (_, value) = unsafe { read(ctx, value) };
    if let Ok(mut outcome) = state.outcome.lock() {
        outcome.outputs.push((name, value));
    }
    abi::OK
}

unsafe extern "C" fn set_error(ctx: *mut c_void, message: Str) {
    // SAFETY: called by the SDK during the call.
    let (state, message) = unsafe { read(ctx, message) };
    if let Ok(mut error) = state.error.lock() {
        *error = Some(message);
    }
}

/// Keeps `text` alive until the call ends and returns it as a `Str`.
fn lend(state: &State, text: &str) -> Str {
    let bytes = nul_terminated(text).into_boxed_slice();
    let s = text_of(&bytes);
    if let Ok(mut lent) = state.lent.lock() {
        lent.push(bytes);
    }
    s
}

unsafe extern "C" fn get_option(
    ctx: *mut c_void,
    section: Str,
    option: Str,
    value: *mut Str,
) -> i32 {
    // SAFETY: called by the SDK during the call.
    let (state, section) = unsafe { read(ctx, section) };
    // SAFETY: as above.
    let (_, option) = unsafe { read(ctx, option) };
    match state.call.other_options.get(&(section, option)) {
        Some(text) => {
            // SAFETY: the SDK passes a valid place for one `Str`.
            unsafe { value.write(lend(state, text)) };
            abi::OK
        }
        None => abi::NOT_FOUND,
    }
}

unsafe extern "C" fn nested_build(
    ctx: *mut c_void,
    config: Str,
    directory: Str,
    error: *mut Str,
) -> i32 {
    // SAFETY: called by the SDK during the call.
    let (state, config) = unsafe { read(ctx, config) };
    // SAFETY: as above.
    let (_, directory) = unsafe { read(ctx, directory) };
    if let Ok(mut outcome) = state.outcome.lock() {
        outcome.nested.push((config.into(), directory.into()));
    }
    match &state.call.nested_error {
        None => abi::OK,
        Some(message) => {
            // SAFETY: the SDK passes a valid place for one `Str`.
            unsafe { error.write(lend(state, message)) };
            abi::ERROR
        }
    }
}

unsafe extern "C" fn cancelled(ctx: *mut c_void) -> i32 {
    // SAFETY: the ctx is ours, alive during the call.
    let state = unsafe { &*(ctx as *const State) };
    i32::from(state.call.cancelled)
}

unsafe extern "C" fn owns(ctx: *mut c_void, path: Str) -> i32 {
    // SAFETY: called by the SDK during the call.
    let (state, path) = unsafe { read(ctx, path) };
    let directory = &state.call.buildout_directory;
    let path = normalize(&directory.join(path));
    let owned = state
        .call
        .owned
        .iter()
        .any(|p| path.starts_with(normalize(&directory.join(p))));
    if owned { abi::OK } else { abi::NOT_FOUND }
}
