//! The Rust module SDK: implement [`Module`], then `declare_module!` writes the entry and the
//! `extern "C"` trampolines, so a module crate needs no unsafe code of its own.
//!
//! ```
//! use switchyard_abi::InterfaceKind;
//! use switchyard_abi::sdk::{HostApi, MessageError};
//!
//! struct Echo;
//! impl switchyard_abi::sdk::Module for Echo {
//!     fn load(host: &HostApi) -> Result<Self, String> {
//!         host.register(InterfaceKind::Command, "echo", "echo TEXT: replies TEXT")?;
//!         Ok(Echo)
//!     }
//!     fn message(&mut self, _host: &HostApi, name: &str, body: &[u8]) -> Result<Vec<u8>, MessageError> {
//!         match name {
//!             "command" => Ok(body.to_vec()),
//!             _ => Err(MessageError::Unknown),
//!         }
//!     }
//! }
//! switchyard_abi::declare_module!(name = "mod_echo", version = "0.1.0", module = Echo);
//! # fn main() {
//! #     assert_eq!(switchyard_module.magic, switchyard_abi::SY_MAGIC);
//! # }
//! ```
//!
//! Every trampoline runs the module inside `catch_unwind`: a panic is logged through the host
//! and answered with [`SY_ERR_PANIC`](crate::SY_ERR_PANIC), after which the host disables the
//! module. This needs the default `panic = "unwind"`; a module built with `panic = "abort"`
//! takes the process down with it.

use std::any::Any;
use std::ffi::{CStr, CString, c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::{
    InterfaceKind, LogLevel, SY_ABI_MAJOR, SY_ABI_MINOR, SY_ERR, SY_ERR_BAD_INPUT, SY_ERR_PANIC,
    SY_ERR_UNKNOWN, SY_HOST_SIZE_1_0, SY_MAGIC, SY_OK, SyFrame, SyHost, SyModule, SyReply,
};

/// A module, as its author writes it. The host calls it from one thread at a time, which is
/// why the methods may take `&mut self` freely.
/// `Send`: the host may load a module on one thread and call it on another (one at a time).
pub trait Module: Send + Sized + 'static {
    /// Builds the module's state and registers its interfaces (only possible here).
    /// An `Err` refuses the load; its text is logged through the host.
    fn load(host: &HostApi) -> Result<Self, String>;

    /// One message from the host (`module.config`, `app.run`, `command`, `event`,
    /// `module.reload`): a JSON body in, a JSON reply out (empty for none).
    fn message(&mut self, host: &HostApi, name: &str, body: &[u8])
    -> Result<Vec<u8>, MessageError>;

    /// Called once before the library is closed. The state is dropped right after.
    fn unload(&mut self) {}

    /// One media frame of an endpoint's or tap's stream. Modules that take no media keep
    /// this default, which drops the frame.
    fn frame(&mut self, host: &HostApi, stream: u64, frame: Frame<'_>) -> Result<(), MessageError> {
        let _ = (host, stream, frame);
        Ok(())
    }
}

/// Why a module did not handle a message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageError {
    /// The module does not know the message name ([`SY_ERR_UNKNOWN`](crate::SY_ERR_UNKNOWN)).
    Unknown,
    /// The body could not be understood ([`SY_ERR_BAD_INPUT`](crate::SY_ERR_BAD_INPUT)); the
    /// text is sent as the reply.
    BadInput(String),
    /// The module could not do it ([`SY_ERR`](crate::SY_ERR)); the text is sent as the reply.
    Failed(String),
}

impl MessageError {
    /// The `SY_ERR_*` code for this error.
    pub const fn code(&self) -> i32 {
        match self {
            MessageError::Unknown => SY_ERR_UNKNOWN,
            MessageError::BadInput(_) => SY_ERR_BAD_INPUT,
            MessageError::Failed(_) => SY_ERR,
        }
    }
}

impl std::fmt::Display for MessageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MessageError::Unknown => f.write_str("unknown message"),
            MessageError::BadInput(text) => write!(f, "bad input: {text}"),
            MessageError::Failed(text) => f.write_str(text),
        }
    }
}

impl std::error::Error for MessageError {}

/// One media frame, borrowed for the duration of the call.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// `samples.len() / channels` samples per channel, interleaved.
    pub samples: &'a [i16],
    /// Sample rate in Hz.
    pub rate: u32,
    /// Interleaved channels.
    pub channels: u16,
    /// [`SY_FORMAT_PCM_S16`](crate::SY_FORMAT_PCM_S16).
    pub format: u16,
}

/// The host's function table, as the module sees it. Only lent to the module (`&HostApi`)
/// during `load`, `message` and `frame`, so it can never outlive the table it points to.
pub struct HostApi {
    raw: *const SyHost,
}

impl HostApi {
    fn table(&self) -> &SyHost {
        // SAFETY: `raw` was checked non-null and at least `SY_HOST_SIZE_1_0` bytes (ABI 1.x)
        // in `load`; the host keeps the table alive until `unload` returns, and a `HostApi`
        // lives at most as long as the module's state, which `unload` drops.
        unsafe { &*self.raw }
    }

    /// Registers an interface; only during [`Module::load`]. The host refuses a name clash.
    pub fn register(&self, kind: InterfaceKind, name: &str, help: &str) -> Result<(), String> {
        let c_name =
            CString::new(name).map_err(|_| format!("interface name {name:?} contains NUL"))?;
        let c_help = CString::new(help).map_err(|_| format!("help of {name} contains NUL"))?;
        let table = self.table();
        let code =
            (table.register_interface)(table.ctx, kind.code(), c_name.as_ptr(), c_help.as_ptr());
        if code == SY_OK {
            Ok(())
        } else {
            Err(format!("the host refused {kind:?} {name} (code {code})"))
        }
    }

    /// Sends a message to the host (e.g. `console` with `{"line":"..."}`); queued, handled
    /// later on the signalling thread.
    pub fn send(&self, name: &str, body: &[u8]) -> Result<(), String> {
        let c_name =
            CString::new(name).map_err(|_| format!("message name {name:?} contains NUL"))?;
        let table = self.table();
        let code = (table.send)(table.ctx, c_name.as_ptr(), body.as_ptr(), body.len());
        if code == SY_OK {
            Ok(())
        } else {
            Err(format!("the host refused message {name} (code {code})"))
        }
    }

    /// Logs a line through the host's log (NUL bytes are shown as `\0`).
    pub fn log(&self, level: LogLevel, message: &str) {
        let line = CString::new(message)
            .unwrap_or_else(|_| CString::new(message.replace('\0', "\\0")).unwrap_or_default());
        let table = self.table();
        (table.log)(table.ctx, level.code(), line.as_ptr());
    }

    /// The host's ABI version.
    pub fn abi(&self) -> (u16, u16) {
        let table = self.table();
        (table.abi_major, table.abi_minor)
    }
}

/// What a module's glue needs of the host: [`HostApi`] in the daemon, a recording fake in
/// the module's own tests (so the glue is tested without a loaded library).
pub trait Host {
    fn register(&self, kind: InterfaceKind, name: &str, help: &str) -> Result<(), String>;
    fn send(&self, name: &str, body: &[u8]) -> Result<(), String>;
    fn log(&self, level: LogLevel, message: &str);
}

impl Host for HostApi {
    fn register(&self, kind: InterfaceKind, name: &str, help: &str) -> Result<(), String> {
        HostApi::register(self, kind, name, help)
    }

    fn send(&self, name: &str, body: &[u8]) -> Result<(), String> {
        HostApi::send(self, name, body)
    }

    fn log(&self, level: LogLevel, message: &str) {
        HostApi::log(self, level, message);
    }
}

/// What `load` leaves in `*state`: the module and the host table it was loaded with.
struct Instance<M> {
    host: HostApi,
    module: M,
}

/// Builds a module's entry; used by `declare_module!`.
#[doc(hidden)]
pub const fn entry<M: Module>(
    name: &'static CStr,
    version: &'static CStr,
    build_hash: &'static CStr,
) -> SyModule {
    SyModule {
        magic: SY_MAGIC,
        abi_major: SY_ABI_MAJOR,
        abi_minor: SY_ABI_MINOR,
        size: size_of::<SyModule>() as u32,
        build_hash: build_hash.as_ptr(),
        name: name.as_ptr(),
        version: version.as_ptr(),
        load: Some(load::<M>),
        unload: Some(unload::<M>),
        on_message: Some(on_message::<M>),
        on_frame: Some(on_frame::<M>),
    }
}

/// A NUL-terminated literal as a `CStr`, at compile time; used by `declare_module!`.
#[doc(hidden)]
pub const fn c_str(with_nul: &'static str) -> &'static CStr {
    match CStr::from_bytes_with_nul(with_nul.as_bytes()) {
        Ok(c) => c,
        Err(_) => panic!("module name, version and build hash must not contain NUL"),
    }
}

/// The text of a panic payload (`panic!("...")` carries a `&str` or a `String`).
fn panic_text(payload: &(dyn Any + Send)) -> &str {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text
    } else {
        "(no message)"
    }
}

/// Logs a caught panic through the host; a second panic while logging is swallowed.
fn report_panic(host: &HostApi, during: &str, payload: &(dyn Any + Send)) {
    let text = panic_text(payload);
    let _ = catch_unwind(AssertUnwindSafe(|| {
        host.log(LogLevel::Error, &format!("panicked in {during}: {text}"));
    }));
}

extern "C" fn load<M: Module>(host: *const SyHost, state: *mut *mut c_void) -> i32 {
    if host.is_null() || state.is_null() {
        return SY_ERR_BAD_INPUT;
    }
    // SAFETY: non-null, and the host passes a table it keeps alive until `unload`. Only the
    // first three fields (identical in every ABI version) are read before the size check.
    let (size, major) = unsafe { ((*host).size, (*host).abi_major) };
    if major != SY_ABI_MAJOR || size < SY_HOST_SIZE_1_0 {
        return SY_ERR_BAD_INPUT;
    }
    let api = HostApi { raw: host };
    match catch_unwind(AssertUnwindSafe(|| M::load(&api))) {
        Ok(Ok(module)) => {
            let instance = Box::new(Instance { host: api, module });
            // SAFETY: `state` is non-null and points to the host's slot for our state.
            unsafe { *state = Box::into_raw(instance).cast() };
            SY_OK
        }
        Ok(Err(reason)) => {
            api.log(LogLevel::Error, &format!("load refused: {reason}"));
            SY_ERR
        }
        Err(payload) => {
            report_panic(&api, "load", payload.as_ref());
            SY_ERR_PANIC
        }
    }
}

extern "C" fn unload<M: Module>(state: *mut c_void) {
    if state.is_null() {
        return;
    }
    // SAFETY: `state` is the `Box<Instance<M>>` that `load::<M>` leaked; the host calls
    // `unload` once, after every other call, so we take back sole ownership here.
    let mut instance = unsafe { Box::from_raw(state.cast::<Instance<M>>()) };
    // Dropping the state may panic too: both happen inside the catch.
    let _ = catch_unwind(AssertUnwindSafe(move || {
        instance.module.unload();
        drop(instance);
    }));
}

extern "C" fn on_message<M: Module>(
    state: *mut c_void,
    name: *const c_char,
    body: *const u8,
    len: usize,
    reply: *const SyReply,
) -> i32 {
    if state.is_null() || name.is_null() || reply.is_null() || (body.is_null() && len != 0) {
        return SY_ERR_BAD_INPUT;
    }
    // SAFETY: the host passes a NUL-terminated name valid for this call.
    let Ok(name) = unsafe { CStr::from_ptr(name) }.to_str() else {
        return SY_ERR_BAD_INPUT;
    };
    let body: &[u8] = if len == 0 {
        &[]
    } else {
        // SAFETY: non-null (checked) and the host promises `len` readable bytes for the call.
        unsafe { std::slice::from_raw_parts(body, len) }
    };
    // SAFETY: `reply` is non-null and valid for this call.
    let reply = unsafe { *reply };
    let instance = state.cast::<Instance<M>>();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `state` is the `Instance<M>` that `load::<M>` made; the host calls the
        // module from one thread at a time, so this is the only reference to it.
        let instance = unsafe { &mut *instance };
        instance.module.message(&instance.host, name, body)
    }));
    let (code, bytes) = match outcome {
        Ok(Ok(bytes)) => (SY_OK, bytes),
        Ok(Err(error)) => {
            let text = match &error {
                MessageError::Unknown => String::new(),
                MessageError::BadInput(text) | MessageError::Failed(text) => text.clone(),
            };
            (error.code(), text.into_bytes())
        }
        Err(payload) => {
            // SAFETY: the instance is still allocated (a panic frees nothing of ours) and no
            // other reference to it is live now that the closure has returned.
            let host = unsafe { &(*instance).host };
            report_panic(host, name, payload.as_ref());
            return SY_ERR_PANIC;
        }
    };
    if !bytes.is_empty() {
        (reply.write)(reply.ctx, bytes.as_ptr(), bytes.len());
    }
    code
}

extern "C" fn on_frame<M: Module>(state: *mut c_void, stream: u64, frame: *const SyFrame) -> i32 {
    if state.is_null() || frame.is_null() {
        return SY_ERR_BAD_INPUT;
    }
    // SAFETY: non-null, valid for this call.
    let raw = unsafe { *frame };
    let Some(total) = raw.count.checked_mul(usize::from(raw.channels)) else {
        return SY_ERR_BAD_INPUT;
    };
    if raw.samples.is_null() && total != 0 {
        return SY_ERR_BAD_INPUT;
    }
    let samples: &[i16] = if total == 0 {
        &[]
    } else {
        // SAFETY: the host promises `count * channels` samples at `samples` for this call.
        unsafe { std::slice::from_raw_parts(raw.samples, total) }
    };
    let frame = Frame {
        samples,
        rate: raw.rate,
        channels: raw.channels,
        format: raw.format,
    };
    let instance = state.cast::<Instance<M>>();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: as in `on_message`: our state, one caller at a time.
        let instance = unsafe { &mut *instance };
        instance.module.frame(&instance.host, stream, frame)
    }));
    match outcome {
        Ok(Ok(())) => SY_OK,
        Ok(Err(error)) => error.code(),
        Err(payload) => {
            // SAFETY: as in `on_message`.
            let host = unsafe { &(*instance).host };
            report_panic(host, "frame", payload.as_ref());
            SY_ERR_PANIC
        }
    }
}

/// Declares a Rust module: `declare_module!(name = "mod_skel", version = "0.1.0", module = Skel)`
/// where `Skel: switchyard_abi::sdk::Module`.
///
/// It exports the static `switchyard_module` (the entry) pointing at the SDK's trampolines.
/// The expansion carries `#[unsafe(no_mangle)]` (an exported symbol name is an unsafe
/// attribute since Rust 2024); the `unsafe_code` lint does not fire for it in the module crate
/// because it comes from this crate's macro, so modules keep `#![forbid(unsafe_code)]`.
/// The build hash is the module crate's version and the ABI version (`0.1.0+abi1.0`).
#[macro_export]
macro_rules! declare_module {
    (name = $name:literal, version = $version:literal, module = $module:ty $(,)?) => {
        /// The module's entry, read by the switchyard loader (see `switchyard_module.h`).
        #[allow(non_upper_case_globals)]
        #[unsafe(no_mangle)]
        pub static switchyard_module: $crate::SyModule = $crate::sdk::entry::<$module>(
            $crate::sdk::c_str(concat!($name, "\0")),
            $crate::sdk::c_str(concat!($version, "\0")),
            // Keep "abi1.0" in step with SY_ABI_MAJOR / SY_ABI_MINOR (tests/sdk.rs checks).
            $crate::sdk::c_str(concat!(env!("CARGO_PKG_VERSION"), "+abi1.0\0")),
        );
    };
}
