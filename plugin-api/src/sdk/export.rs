//! The `extern "C"` side of the SDK: per-recipe vtables, the guard that keeps panics and
//! errors from crossing the boundary, and `init`.

use std::any::Any;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};

use super::bridge::{self, CurrentCall};
use super::{Context, Options, Recipe, Result};
use crate::abi::{self, HostApi, RecipeVTable, Str};

/// Holds the vtable of the recipe `T`; `export_plugin!` takes its address.
pub struct Export<T>(PhantomData<T>);

impl<T: Recipe> Export<T> {
    pub const VTABLE: RecipeVTable = RecipeVTable {
        struct_size: std::mem::size_of::<RecipeVTable>(),
        install: Some(install::<T>),
        update: if T::UPDATE { Some(update::<T>) } else { None },
        uninstall: if T::UNINSTALL {
            Some(uninstall::<T>)
        } else {
            None
        },
    };
}

unsafe extern "C" fn install<T: Recipe>(call: *const abi::Call) -> i32 {
    guard(call, T::install)
}

unsafe extern "C" fn update<T: Recipe>(call: *const abi::Call) -> i32 {
    guard(call, T::update)
}

unsafe extern "C" fn uninstall<T: Recipe>(call: *const abi::Call) -> i32 {
    guard(call, T::uninstall)
}

/// The plugin's `init`: keeps the host's API and starts forwarding logs and panics to it.
///
/// # Safety
/// `host` must be null or point to a valid `HostApi` for the duration of the call.
pub unsafe extern "C" fn init(host: *const HostApi) -> i32 {
    let outcome = panic::catch_unwind(|| {
        // SAFETY: the host passes a valid `HostApi` (or null, refused below).
        match unsafe { host.as_ref() } {
            Some(host) => {
                bridge::install(host);
                abi::OK
            }
            None => abi::ERROR,
        }
    });
    outcome.unwrap_or(abi::PANIC)
}

/// Runs one recipe function for the host: nothing unwinds out, an error or a panic becomes
/// its status code plus a message given to the host's `set_error`.
fn guard(call: *const abi::Call, body: fn(&Options, &Context) -> Result<()>) -> i32 {
    // SAFETY: the host passes a valid `Call` for the duration of this function, or null.
    let Some(full) = (unsafe { full_call(call) }) else {
        return abi::ERROR;
    };
    let call = &full;
    let _current = CurrentCall::enter(call);
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `call` is the host's valid call, alive until we return.
        let ctx = unsafe { Context::from_raw(call) }?;
        // SAFETY: as above.
        let options = unsafe { options(ctx.raw(), ctx.buildout_directory()) }?;
        body(&options, &ctx)
    }));
    match outcome {
        Ok(Ok(())) => abi::OK,
        Ok(Err(error)) => {
            set_error(call, error.message());
            abi::ERROR
        }
        Err(payload) => {
            let mut message = panic_message(&*payload);
            if let Some(location) = bridge::take_panic_location() {
                message = format!("{message} (at {location})");
            }
            // The payload's own `Drop` may panic; that second payload is leaked on purpose.
            let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(payload)))
                .map_err(std::mem::forget);
            set_error(call, &message);
            abi::PANIC
        }
    }
}

/// The host's call copied into a whole `Call` of this crate's ABI version: a host of an
/// older minor version passes a shorter struct (its `struct_size`), whose missing fields at
/// the end stay zero, that is `None`. Reading the host's struct through a `&Call` would
/// claim bytes it does not have.
///
/// # Safety
/// `call` must be null or point to a `Call` of at least `struct_size` readable bytes.
unsafe fn full_call(call: *const abi::Call) -> Option<abi::Call> {
    if call.is_null() {
        return None;
    }
    // SAFETY: every version of `Call` starts with `struct_size`.
    let size = unsafe { std::ptr::addr_of!((*call).struct_size).read() };
    let mut full = std::mem::MaybeUninit::<abi::Call>::zeroed();
    // SAFETY: the host's struct has `size` readable bytes; at most the size of ours is
    // copied into ours, which does not overlap it.
    unsafe {
        std::ptr::copy_nonoverlapping(
            call.cast::<u8>(),
            full.as_mut_ptr().cast::<u8>(),
            size.min(std::mem::size_of::<abi::Call>()),
        );
    }
    // SAFETY: all-zero bytes are a valid `Call` (null pointers, zero numbers, `None`
    // callbacks), and the bytes copied over them came from a valid `Call` of the host.
    let mut full = unsafe { full.assume_init() };
    full.struct_size = size;
    Some(full)
}

/// The options of a raw call, checked to be UTF-8.
///
/// # Safety
/// `call` must be the host's valid call, with its option strings alive for `'a`.
unsafe fn options<'a>(call: &'a abi::Call, directory: &'a std::path::Path) -> Result<Options<'a>> {
    let raw: &[abi::KeyValue] = if call.option_count == 0 {
        &[]
    } else if call.options.is_null() {
        return Err(super::Error::new("the host passed a null option list"));
    } else {
        // SAFETY: the host passes `option_count` entries at `options`, alive for the call.
        unsafe { std::slice::from_raw_parts(call.options, call.option_count) }
    };
    let mut items = Vec::with_capacity(raw.len());
    for kv in raw {
        // SAFETY: the host keeps every option string alive for the call.
        let key = unsafe { super::context::host_str(kv.key) }
            .ok_or_else(|| super::Error::new("the host passed an option name that is not UTF-8"))?;
        // SAFETY: as above.
        let value = unsafe { super::context::host_str(kv.value) }.ok_or_else(|| {
            super::Error::new(format!("the host passed option `{key}` as invalid UTF-8"))
        })?;
        items.push((key, value));
    }
    Ok(Options::new(items, directory))
}

fn set_error(call: &abi::Call, message: &str) {
    if let Some(set_error) = call.set_error {
        // SAFETY: the callback and ctx come from the host for this call.
        unsafe { set_error(call.ctx, Str::new(message)) };
    }
}

/// The text of a panic payload (`panic!` gives a `&str` or a `String`).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}
