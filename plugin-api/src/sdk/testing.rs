//! Runs a recipe in-process, through the same entry points and the same host callbacks
//! ([`host`](crate::host)) rbuildout uses, with an in-memory host that answers from the
//! [`TestCall`] and records what the recipe reports: unit tests for recipes without building
//! a library or running rbuildout. Behind the `testing` feature: enable it in
//! `[dev-dependencies]` only, so that it stays out of the plugin library.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use super::Recipe;
use super::export::Export;
use crate::abi::{self, RecipeFn};
use crate::host::{self, Host, Log, Request};

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
    /// Acts as a host of ABI 1.4, whose call ends before `progress`.
    pub abi_1_4: bool,
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
    /// Each progress report: `COUNT label done/total` or `BYTES label done/total`.
    pub progress: Vec<String>,
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
    run::<R>(Export::<R>::VTABLE.install, call)
}

/// Runs `R::update` (an error if `R::UPDATE` is false).
pub fn update<R: Recipe>(call: &TestCall) -> Result<Outcome, Failure> {
    run::<R>(Export::<R>::VTABLE.update, call)
}

/// Runs `R::uninstall` (an error if `R::UNINSTALL` is false).
pub fn uninstall<R: Recipe>(call: &TestCall) -> Result<Outcome, Failure> {
    run::<R>(Export::<R>::VTABLE.uninstall, call)
}

/// The in-memory host: answers from the [`TestCall`], records logs and nested builds.
struct TestHost<'a> {
    call: &'a TestCall,
    outcome: Mutex<Outcome>,
}

impl TestHost<'_> {
    fn outcome(&self) -> MutexGuard<'_, Outcome> {
        self.outcome.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Log for TestHost<'_> {
    fn log(&self, level: u32, _target: &str, message: &str) {
        let level = ["OFF", "ERROR", "WARN", "INFO", "DEBUG", "TRACE"]
            .get(level as usize)
            .unwrap_or(&"TRACE");
        self.outcome().logs.push(format!("{level} {message}"));
    }
}

impl Host for TestHost<'_> {
    fn option(&self, section: &str, option: &str) -> Option<String> {
        self.call
            .other_options
            .get(&(section.to_owned(), option.to_owned()))
            .cloned()
    }

    /// The options of `section` in [`TestCall::other_options`], by name.
    fn option_names(&self, section: &str) -> Option<Vec<String>> {
        let mut names: Vec<String> = self
            .call
            .other_options
            .keys()
            .filter(|(s, _)| s == section)
            .map(|(_, o)| o.clone())
            .collect();
        names.sort();
        (!names.is_empty()).then_some(names)
    }

    fn nested_build(&self, config: &Path, directory: &Path) -> Result<(), String> {
        self.outcome()
            .nested
            .push((config.to_path_buf(), directory.to_path_buf()));
        match &self.call.nested_error {
            None => Ok(()),
            Some(message) => Err(message.clone()),
        }
    }

    fn cancelled(&self) -> bool {
        self.call.cancelled
    }

    fn progress(&self, kind: u32, done: u64, total: u64, label: &str) {
        let kind = if kind == abi::PROGRESS_COUNT {
            "COUNT"
        } else {
            "BYTES"
        };
        self.outcome()
            .progress
            .push(format!("{kind} {label} {done}/{total}"));
    }
}

fn run<R>(function: Option<RecipeFn>, call: &TestCall) -> Result<Outcome, Failure> {
    let Some(function) = function else {
        return Err(Failure {
            message: "the recipe does not implement this hook".into(),
            panicked: false,
            outcome: Box::default(),
        });
    };
    let host = TestHost {
        call,
        outcome: Mutex::default(),
    };
    let directory = call.buildout_directory.to_string_lossy();
    let owned: Vec<String> = call
        .owned
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let request = Request {
        recipe: std::any::type_name::<R>(),
        part: &call.part,
        buildout_directory: &directory,
        offline: call.offline,
        newest: call.newest,
        locked: call.locked,
        options: &call.options,
        owned: &owned,
        call_size: if call.abi_1_0 {
            abi::CALL_SIZE_1_0
        } else if call.abi_1_4 {
            abi::CALL_SIZE_1_2
        } else {
            Request::SIZE
        },
    };
    // SAFETY: `function` is the SDK's own guard for `R`.
    let reply = unsafe { host::call(function, &request, &host) };
    let mut outcome = host.outcome.into_inner().unwrap_or_else(|e| e.into_inner());
    outcome.paths = reply.paths;
    outcome.outputs = reply.outputs;
    // As rbuildout does: a panic is a panic, an ABI fault fails even a call that says OK.
    let panicked = reply.status == abi::PANIC;
    let message = match reply.fault {
        Some(fault) if !panicked => fault,
        _ if reply.status == abi::OK => return Ok(outcome),
        _ => reply.error.unwrap_or_default(),
    };
    Err(Failure {
        message,
        panicked,
        outcome: Box::new(outcome),
    })
}
