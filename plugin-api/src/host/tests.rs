//! The host side driven by raw recipe functions that do what the SDK never does: invalid
//! UTF-8, null pointers, repeated outputs, hosts that panic.

use std::path::Path;
use std::sync::Mutex;

use super::{Host, Log, Reply, Request};
use crate::abi::{self, Str};

#[derive(Default)]
struct Memory {
    logs: Mutex<Vec<(u32, String, String)>>,
    progress: Mutex<Vec<(u32, u64, u64, String)>>,
    panic: bool,
}

impl Log for Memory {
    fn log(&self, level: u32, target: &str, message: &str) {
        self.logs
            .lock()
            .unwrap()
            .push((level, target.to_owned(), message.to_owned()));
    }
}

impl Host for Memory {
    fn option(&self, section: &str, option: &str) -> Option<String> {
        assert!(!self.panic, "the host panicked");
        (section == "s" && option == "o").then(|| "value".to_owned())
    }

    fn option_names(&self, section: &str) -> Option<Vec<String>> {
        (section == "s").then(|| vec!["o".to_owned(), "p".to_owned()])
    }

    fn nested_build(&self, config: &Path, _directory: &Path) -> Result<(), String> {
        Err(format!("cannot build {}", config.display()))
    }

    fn cancelled(&self) -> bool {
        true
    }

    fn progress(&self, kind: u32, done: u64, total: u64, label: &str) {
        self.progress
            .lock()
            .unwrap()
            .push((kind, done, total, label.to_owned()));
    }
}

fn call(function: abi::RecipeFn, owned: &[String], host: &Memory) -> Reply {
    let options = [
        ("b".to_owned(), "2".to_owned()),
        ("a".to_owned(), "1".to_owned()),
    ];
    let request = Request {
        recipe: "raw:test",
        part: "p",
        buildout_directory: "/instance",
        offline: true,
        newest: false,
        locked: true,
        options: &options,
        owned,
        call_size: Request::SIZE,
    };
    // SAFETY: the functions below keep the ABI.
    unsafe { super::call(function, &request, host) }
}

/// # Safety
/// `s` must be a string the host passed, alive for `'a`.
unsafe fn text<'a>(s: Str) -> &'a str {
    // SAFETY: the host passes UTF-8 it keeps alive for the call.
    unsafe { std::str::from_utf8(s.as_bytes().unwrap()).unwrap() }
}

/// Reports the call it got, publishes a name twice, then sends a path that is not UTF-8.
unsafe extern "C" fn reports(call: *const abi::Call) -> i32 {
    // SAFETY: the host passes a valid call, alive until we return.
    unsafe {
        let call = &*call;
        let options = std::slice::from_raw_parts(call.options, call.option_count);
        let seen: Vec<String> = options
            .iter()
            .map(|kv| format!("{}={}", text(kv.key), text(kv.value)))
            .collect();
        let set_output = call.set_output.unwrap();
        set_output(call.ctx, Str::new("options"), Str::new(&seen.join(",")));
        let context = format!(
            "{} {} {}",
            text(call.part),
            text(call.buildout_directory),
            call.flags
        );
        set_output(call.ctx, Str::new("context"), Str::new(&context));
        set_output(call.ctx, Str::new("context"), Str::new("again"));
        // The NUL after every string the host passes, for C.
        let nul = *call.part.ptr.add(call.part.len);
        set_output(call.ctx, Str::new("nul"), Str::new(&nul.to_string()));
        let add_path = call.add_path.unwrap();
        assert_eq!(add_path(call.ctx, Str::new("made")), abi::OK);
        let bad = [b'x', 0xff, b'\n'];
        let status = add_path(
            call.ctx,
            Str {
                ptr: bad.as_ptr(),
                len: bad.len(),
            },
        );
        assert_eq!(status, abi::ERROR);
        // Only the first fault is kept.
        add_path(
            call.ctx,
            Str {
                ptr: std::ptr::null(),
                len: 3,
            },
        );
        (call.log.unwrap())(
            call.ctx,
            abi::LEVEL_WARN,
            Str::new("raw"),
            Str {
                ptr: bad.as_ptr(),
                len: 2,
            },
        );
        abi::OK
    }
}

#[test]
fn the_call_passes_sorted_options_and_a_fault_fails_even_an_ok() {
    let host = Memory::default();
    let reply = call(reports, &[], &host);
    assert_eq!(reply.status, abi::OK);
    let outputs: Vec<(&str, &str)> = reply
        .outputs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        outputs,
        [
            ("options", "a=1,b=2"),
            ("context", "p /instance 5"),
            ("context", "again"),
            ("nul", "0"),
        ]
    );
    assert_eq!(reply.paths, [Path::new("made")]);
    assert_eq!(
        reply.fault.as_deref(),
        Some(r#"recipe `raw:test` sent a path that is not valid UTF-8: "x\xff\n""#)
    );
    assert_eq!(
        *host.logs.lock().unwrap(),
        [(abi::LEVEL_WARN, "raw".to_owned(), "x\u{fffd}".to_owned())]
    );
}

/// Asks for options, a nested build, cancellation and ownership, and publishes the answers.
unsafe extern "C" fn asks(call: *const abi::Call) -> i32 {
    // SAFETY: the host passes a valid call, alive until we return.
    unsafe {
        let call = &*call;
        let mut answers = Vec::new();
        let mut value = Str::EMPTY;
        let get_option = call.get_option.unwrap();
        let found = get_option(call.ctx, Str::new("s"), Str::new("o"), &mut value);
        answers.push(format!(
            "option {found} {}",
            if found == abi::OK { text(value) } else { "" }
        ));
        let missing = get_option(call.ctx, Str::new("s"), Str::new("x"), &mut value);
        answers.push(format!("missing {missing}"));
        let mut names = Str::EMPTY;
        let listed = (call.option_names.unwrap())(call.ctx, Str::new("s"), &mut names);
        answers.push(format!("names {listed} {:?}", text(names)));
        let absent = (call.option_names.unwrap())(call.ctx, Str::new("nope"), &mut names);
        answers.push(format!("no section {absent}"));
        let mut error = Str::EMPTY;
        let nested = (call.nested_build.unwrap())(
            call.ctx,
            Str::new("sub.toml"),
            Str::new("sub"),
            &mut error,
        );
        answers.push(format!("nested {nested} {}", text(error)));
        answers.push(format!("cancelled {}", (call.cancelled.unwrap())(call.ctx)));
        for path in [
            "etc/app.conf",
            "/instance/etc/app.conf/x",
            "etc/../etc/app.conf",
            "etc",
            "other",
        ] {
            answers.push(format!(
                "owns {path} {}",
                (call.owns.unwrap())(call.ctx, Str::new(path))
            ));
        }
        // The lent option value is still readable at the end of the call.
        if found == abi::OK {
            answers.push(format!("still {}", text(value)));
        }
        (call.set_output.unwrap())(call.ctx, Str::new("answers"), Str::new(&answers.join("; ")));
        let message = "x".repeat(super::MAX_ERROR + 10);
        (call.set_error.unwrap())(call.ctx, Str::new(&message));
        abi::ERROR
    }
}

#[test]
fn callbacks_answer_from_the_host_and_the_recorded_paths() {
    let host = Memory::default();
    // The instance folder itself, recorded by an old state, owns nothing.
    let owned = ["etc/app.conf".to_owned(), "/instance".to_owned()];
    let reply = call(asks, &owned, &host);
    assert_eq!(reply.status, abi::ERROR);
    assert_eq!(reply.fault, None);
    assert_eq!(
        reply.outputs[0].1,
        format!(
            "option {} value; missing {}; names {} \"o\\np\"; no section {}; nested {} cannot build sub.toml; cancelled 1; \
             owns etc/app.conf {}; owns /instance/etc/app.conf/x {}; \
             owns etc/../etc/app.conf {}; owns etc {}; owns other {}; still value",
            abi::OK,
            abi::NOT_FOUND,
            abi::OK,
            abi::NOT_FOUND,
            abi::ERROR,
            abi::OK,
            abi::OK,
            abi::OK,
            abi::NOT_FOUND,
            abi::NOT_FOUND,
        )
    );
    let error = reply.error.unwrap();
    assert!(
        error.ends_with(" [… 10 more bytes cut]"),
        "{}",
        &error[error.len() - 40..]
    );
    assert_eq!(
        error.len(),
        super::MAX_ERROR + " [… 10 more bytes cut]".len()
    );
}

/// Asks for an option of a host that panics.
unsafe extern "C" fn asks_a_panicking_host(call: *const abi::Call) -> i32 {
    // SAFETY: the host passes a valid call, alive until we return.
    unsafe {
        let call = &*call;
        let mut value = Str::EMPTY;
        (call.get_option.unwrap())(call.ctx, Str::new("s"), Str::new("o"), &mut value)
    }
}

#[test]
fn a_panic_in_the_host_is_an_error_status_not_an_unwind() {
    let host = Memory {
        panic: true,
        ..Memory::default()
    };
    let reply = call(asks_a_panicking_host, &[], &host);
    assert_eq!(reply.status, abi::ERROR);
}

static GLOBAL: Memory = Memory {
    logs: Mutex::new(Vec::new()),
    progress: Mutex::new(Vec::new()),
    panic: false,
};

/// An `init` that logs through the host's global log function.
unsafe extern "C" fn init(host: *const abi::HostApi) -> i32 {
    // SAFETY: the host passes a valid `HostApi` for the call.
    unsafe {
        let host = &*host;
        assert_eq!(
            (host.abi_major, host.abi_minor),
            (abi::ABI_MAJOR, abi::ABI_MINOR)
        );
        (host.log.unwrap())(host.ctx, abi::LEVEL_INFO, Str::EMPTY, Str::new("ready"));
        // A null ctx is ignored.
        (host.log.unwrap())(
            std::ptr::null_mut(),
            abi::LEVEL_INFO,
            Str::EMPTY,
            Str::new("lost"),
        );
        i32::try_from(host.max_level).unwrap()
    }
}

#[test]
fn init_gets_a_log_that_outlives_it() {
    // SAFETY: `init` above keeps the ABI.
    let status = unsafe { super::init(init, abi::LEVEL_DEBUG, &GLOBAL) };
    assert_eq!(status, abi::LEVEL_DEBUG as i32);
    assert_eq!(
        *GLOBAL.logs.lock().unwrap(),
        [(abi::LEVEL_INFO, String::new(), "ready".to_owned())]
    );
}

/// Reports progress of both kinds, of an unknown kind, and with a label that is not UTF-8;
/// publishes the statuses.
unsafe extern "C" fn progresses(call: *const abi::Call) -> i32 {
    // SAFETY: the host passes a valid call, alive until we return.
    unsafe {
        let call = &*call;
        let progress = call.progress.unwrap();
        let statuses = [
            progress(
                call.ctx,
                abi::PROGRESS_COUNT,
                2,
                5,
                Str::new("distributions"),
            ),
            progress(call.ctx, abi::PROGRESS_BYTES, 100, 0, Str::new("a.whl")),
            progress(call.ctx, 9, 1, 1, Str::new("what")),
        ];
        (call.set_output.unwrap())(
            call.ctx,
            Str::new("statuses"),
            Str::new(&format!("{statuses:?}")),
        );
        let bad = [0xffu8];
        progress(
            call.ctx,
            abi::PROGRESS_COUNT,
            1,
            1,
            Str {
                ptr: bad.as_ptr(),
                len: 1,
            },
        );
        abi::OK
    }
}

#[test]
fn progress_reaches_the_host_and_bad_reports_do_not() {
    let host = Memory::default();
    let reply = call(progresses, &[], &host);
    assert_eq!(
        reply.outputs,
        [(
            "statuses".to_owned(),
            format!("[{}, {}, {}]", abi::OK, abi::OK, abi::UNSUPPORTED)
        )]
    );
    assert_eq!(
        *host.progress.lock().unwrap(),
        [
            (abi::PROGRESS_COUNT, 2, 5, "distributions".to_owned()),
            (abi::PROGRESS_BYTES, 100, 0, "a.whl".to_owned()),
        ]
    );
    assert_eq!(
        reply.fault.as_deref(),
        Some("recipe `raw:test` sent a progress label that is not valid UTF-8: \"\\xff\"")
    );
}
