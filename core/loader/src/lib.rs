//! Loads switchyard modules: `dlopen`s a `.so`, checks its `switchyard_module` entry before
//! any module code runs, then starts it with a host table whose calls reach a [`Host`], and
//! sends it messages and media frames.
//!
//! ```text
//! Library::open(path)   dlopen (RTLD_NOW), read the 12-byte header: magic, ABI major,
//!                       size, then name / version / build hash, then ABI minor
//! Library::start(host)  the module's load(): it registers its interfaces -> Host::register
//! Module::request(..)   on_message(): name + JSON body -> JSON reply
//! drop(Module)          unload(state), then dlclose
//! ```
//!
//! What "no module code runs" covers: the checks read data only. `dlopen` itself runs the
//! library's ELF constructors, which modules must not have (the SDK adds none; the C header
//! says so).
//!
//! A module that panics (the SDK answers [`SY_ERR_PANIC`]) is disabled: every later call is
//! refused with [`CallError::Disabled`] without entering it, and the process carries on.

use std::ffi::{CStr, CString, c_char, c_void};
use std::mem::MaybeUninit;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

pub use switchyard_abi::{InterfaceKind, LogLevel};
use switchyard_abi::{
    SY_ABI_MAJOR, SY_ABI_MINOR, SY_ERR, SY_ERR_BAD_INPUT, SY_ERR_PANIC, SY_ERR_UNKNOWN,
    SY_FORMAT_PCM_S16, SY_MAGIC, SY_MODULE_SIZE_1_0, SY_OK, SyFrame, SyHost, SyModule,
    SyModuleHeader, SyReply,
};

/// The exported symbol every module defines.
const ENTRY_SYMBOL: &CStr = c"switchyard_module";

/// What the switchyard side of a module boundary does with a module's requests.
/// Called from the thread that is calling into the module (during [`Library::start`],
/// [`Module::request`], [`Module::frame`]) or, for `send` and `log`, from any thread the
/// module runs.
pub trait Host: Send + Sync {
    /// The module registers an interface (only while it loads). `Err` refuses it, e.g. a
    /// name already taken; the reason is logged for the module.
    fn register(
        &self,
        module: &str,
        kind: InterfaceKind,
        name: &str,
        help: &str,
    ) -> Result<(), String>;
    /// The module sends a message (e.g. `console`); queue it, do not call the module back.
    fn send(&self, module: &str, name: &str, body: &[u8]);
    /// The module logs a line.
    fn log(&self, module: &str, level: LogLevel, message: &str);
}

/// Why a module was not loaded. Each message names the module (or its path) and what differs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// `dlopen` failed (no such file, not an ELF object, a missing symbol).
    #[error("cannot open module {}: {reason}", path.display())]
    Open { path: PathBuf, reason: String },
    /// The library exports no `switchyard_module`.
    #[error("{} is not a switchyard module: it exports no `switchyard_module` entry", path.display())]
    NoEntry { path: PathBuf },
    /// The entry does not start with `SY_MAGIC`.
    #[error("{} is not a switchyard module: its entry starts with {found:#010x}, not {SY_MAGIC:#010x} (\"SYM1\")", path.display())]
    BadMagic { path: PathBuf, found: u32 },
    /// The module was built for another ABI major.
    #[error(
        "module {module} was built for ABI {module_major}.x, this switchyard speaks {host_major}.{SY_ABI_MINOR}: rebuild the module against this switchyard's switchyard_module.h"
    )]
    AbiMajor {
        module: String,
        module_major: u16,
        host_major: u16,
    },
    /// The module was built for a newer ABI minor than this switchyard's.
    #[error(
        "module {module} was built for ABI {SY_ABI_MAJOR}.{module_minor}, newer than this switchyard's {SY_ABI_MAJOR}.{host_minor}: upgrade switchyard or rebuild the module"
    )]
    AbiMinor {
        module: String,
        module_minor: u16,
        host_minor: u16,
    },
    /// The entry is smaller than the smallest entry of its ABI major.
    #[error(
        "module {module} has a {size}-byte entry, ABI {SY_ABI_MAJOR}.x needs at least {expected}: the entry is truncated"
    )]
    EntryTooSmall {
        module: String,
        size: u32,
        expected: u32,
    },
    /// `name`, `version` or `build_hash` is null or not UTF-8.
    #[error("{}: the entry's {field} is not a NUL-terminated UTF-8 string", path.display())]
    BadString { path: PathBuf, field: &'static str },
    /// The module's `load` returned an error code.
    #[error("module {module} refused to load (code {code})")]
    LoadFailed { module: String, code: i32 },
    /// The module panicked in `load` (the SDK caught it).
    #[error("module {module} panicked while loading")]
    Panicked { module: String },
}

/// Why a call into a module failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The module answered an error code; `detail` is its reply text.
    #[error("module {module} failed {message} (code {code}): {detail}")]
    Failed {
        module: String,
        message: String,
        code: i32,
        detail: String,
    },
    /// The module does not handle this message.
    #[error("module {module} does not handle message {message}")]
    UnknownMessage { module: String, message: String },
    /// The module panicked in this call; it is now disabled.
    #[error("module {module} panicked")]
    Panicked { module: String },
    /// The module panicked earlier and is disabled.
    #[error("module {module} is disabled after a panic")]
    Disabled { module: String },
}

/// One `dlopen`ed library whose entry passed the checks; none of its code has run yet.
pub struct Library {
    entry: SyModule,
    name: String,
    version: String,
    build_hash: String,
    abi: (u16, u16),
    // Dropped (dlclose) last; `entry` points into it.
    library: libloading::Library,
}

// SAFETY: a `Library` holds the entry's copy (pointers to immutable strings and code in the
// library, which it keeps open) and calls no module code except in `start(self)`, which
// consumes it; `&Library` only reads owned strings.
unsafe impl Send for Library {}
// SAFETY: as above.
unsafe impl Sync for Library {}

impl std::fmt::Debug for Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Library")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("build_hash", &self.build_hash)
            .field("abi", &self.abi)
            .finish()
    }
}

/// `libmod_skel.so` -> `mod_skel`: how a module is named before its own name can be read.
fn name_from_path(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    stem.strip_prefix("lib").map(str::to_owned).unwrap_or(stem)
}

/// Reads one of the entry's strings; `None` for null or non-UTF-8.
///
/// # Safety
/// `ptr` is null or points to a NUL-terminated string that lives as long as the library.
unsafe fn entry_string(ptr: *const c_char) -> Option<String> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: non-null, NUL-terminated by the ABI's contract (the caller's promise).
    let text = unsafe { CStr::from_ptr(ptr) };
    text.to_str().ok().map(str::to_owned)
}

impl Library {
    /// `dlopen`s `path` and checks its entry: magic, ABI major, entry size, name / version /
    /// build hash, ABI minor. No module function is called.
    pub fn open(path: &Path) -> Result<Library, LoadError> {
        // RTLD_NOW: an unresolved symbol fails here, not in the middle of a call (lazy
        // binding would abort the process). RTLD_LOCAL: modules do not see each other.
        let flags = libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_LOCAL;
        // SAFETY: loading a library runs its ELF constructors; switchyard modules have none
        // (documented in switchyard_module.h), and the SDK adds none.
        let library = unsafe { libloading::os::unix::Library::open(Some(path), flags) }
            .map(libloading::Library::from)
            .map_err(|e| LoadError::Open {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        // SAFETY: we only take the symbol's address; nothing is called or read through the
        // pointer-sized type libloading requires here.
        let address = unsafe { library.get::<*const c_void>(ENTRY_SYMBOL) }
            .ok()
            // SAFETY: the pointer is only used while `library` is open (it is kept in `Library`).
            .and_then(|symbol| unsafe { symbol.try_as_raw_ptr() })
            .filter(|address| !address.is_null())
            .ok_or_else(|| LoadError::NoEntry {
                path: path.to_owned(),
            })?;

        // Every ABI version starts with this 12-byte header: read only it first.
        // SAFETY: the symbol is a module's entry, which starts with a `SyModuleHeader`; an
        // unaligned read accepts whatever alignment a hand-made entry has.
        let header = unsafe { address.cast::<SyModuleHeader>().read_unaligned() };
        let file_name = name_from_path(path);
        if header.magic != SY_MAGIC {
            return Err(LoadError::BadMagic {
                path: path.to_owned(),
                found: header.magic,
            });
        }
        if header.abi_major != SY_ABI_MAJOR {
            return Err(LoadError::AbiMajor {
                module: file_name,
                module_major: header.abi_major,
                host_major: SY_ABI_MAJOR,
            });
        }
        if header.size < SY_MODULE_SIZE_1_0 {
            return Err(LoadError::EntryTooSmall {
                module: file_name,
                size: header.size,
                expected: SY_MODULE_SIZE_1_0,
            });
        }
        // Same major: the layout is ours up to `size` bytes. Fields past a smaller (older
        // minor) entry stay zero, i.e. null / `None`; bytes past ours are ignored.
        let mut entry = MaybeUninit::<SyModule>::zeroed();
        let len = (header.size as usize).min(size_of::<SyModule>());
        // SAFETY: the module declares `size` bytes of entry at `address` and we copy at most
        // that many, into a zeroed `SyModule`, for which all-zero bytes are valid (null
        // pointers, `None` slots); the copied bytes are a same-major `SyModule` prefix.
        let entry = unsafe {
            std::ptr::copy_nonoverlapping(
                address.cast::<u8>(),
                entry.as_mut_ptr().cast::<u8>(),
                len,
            );
            entry.assume_init()
        };
        let field = |field: &'static str, ptr| {
            // SAFETY: the entry's strings are null or NUL-terminated and static in the library.
            unsafe { entry_string(ptr) }.ok_or_else(|| LoadError::BadString {
                path: path.to_owned(),
                field,
            })
        };
        let name = field("name", entry.name)?;
        let version = field("version", entry.version)?;
        let build_hash = field("build_hash", entry.build_hash)?;
        if header.abi_minor > SY_ABI_MINOR {
            return Err(LoadError::AbiMinor {
                module: name,
                module_minor: header.abi_minor,
                host_minor: SY_ABI_MINOR,
            });
        }
        Ok(Library {
            entry,
            name,
            version,
            build_hash,
            abi: (header.abi_major, header.abi_minor),
            library,
        })
    }

    /// The module's name (from its entry).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The module's version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// What built the module (e.g. `0.1.0+abi1.0` for SDK modules).
    pub fn build_hash(&self) -> &str {
        &self.build_hash
    }

    /// The ABI (major, minor) the module was built for.
    pub fn abi(&self) -> (u16, u16) {
        self.abi
    }

    /// Runs the module's `load` with a host table whose calls reach `host`; its
    /// registrations arrive through [`Host::register`] during this call.
    pub fn start(self, host: Arc<dyn Host>) -> Result<Module, LoadError> {
        let context = Box::new(HostContext {
            host,
            module: self.name.clone(),
            loading: AtomicBool::new(true),
        });
        let table = Box::new(SyHost {
            size: size_of::<SyHost>() as u32,
            abi_major: SY_ABI_MAJOR,
            abi_minor: SY_ABI_MINOR,
            // The context is only read through shared references (its mutable part is atomic).
            ctx: (&raw const *context).cast_mut().cast(),
            register_interface: host_register,
            send: host_send,
            log: host_log,
        });
        let mut state: *mut c_void = std::ptr::null_mut();
        if let Some(load) = self.entry.load {
            let code = load(&raw const *table, &raw mut state);
            if code != SY_OK
                && !state.is_null()
                && let Some(unload) = self.entry.unload
            {
                // A load that failed after building state (or starting threads) still gets
                // its unload before the library is unmapped: its code must not outlive it.
                unload(state);
            }
            match code {
                SY_OK => {}
                SY_ERR_PANIC => return Err(LoadError::Panicked { module: self.name }),
                code => {
                    return Err(LoadError::LoadFailed {
                        module: self.name,
                        code,
                    });
                }
            }
        }
        context.loading.store(false, Ordering::Release);
        Ok(Module {
            state,
            entry: self.entry,
            calls: Mutex::new(()),
            disabled: AtomicBool::new(false),
            name: self.name,
            version: self.version,
            _table: table,
            _context: context,
            _library: self.library,
        })
    }
}

/// A started module. Dropping it calls its `unload`, then closes the library.
pub struct Module {
    state: *mut c_void,
    entry: SyModule,
    /// Held across every call into the module: the ABI promises modules one caller at a time.
    calls: Mutex<()>,
    disabled: AtomicBool,
    name: String,
    version: String,
    // The host table and its context outlive every call (dropped after `unload`).
    _table: Box<SyHost>,
    _context: Box<HostContext>,
    // Dropped (dlclose) last: every pointer above points into it.
    _library: libloading::Library,
}

// SAFETY: the ABI lets the host call a module from any thread, one at a time. `Module`
// enforces "one at a time" itself: every call into the module (`request`, `frame`, `unload`
// in `drop`) holds `calls`, so the raw `state` is never used by two threads at once. The
// entry's pointers point to immutable data and code in the library, the host table is
// read-only, and the context is `Sync` (an `Arc<dyn Host>` with `Host: Send + Sync`, a
// `String` and an atomic).
unsafe impl Send for Module {}
// SAFETY: as above: shared use goes through `calls`.
unsafe impl Sync for Module {}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("disabled", &self.is_disabled())
            .finish()
    }
}

impl Module {
    /// The module's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The module's version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// True after the module panicked: it is never entered again.
    pub fn is_disabled(&self) -> bool {
        self.disabled.load(Ordering::Acquire)
    }

    /// Sends message `name` with a JSON `body`; returns the reply (empty if none).
    pub fn request(&self, name: &str, body: &[u8]) -> Result<Vec<u8>, CallError> {
        if self.is_disabled() {
            return Err(CallError::Disabled {
                module: self.name.clone(),
            });
        }
        let Some(on_message) = self.entry.on_message else {
            return Err(self.unknown(name));
        };
        let Ok(c_name) = CString::new(name) else {
            return Err(CallError::Failed {
                module: self.name.clone(),
                message: name.to_owned(),
                code: SY_ERR_BAD_INPUT,
                detail: "the message name contains NUL".into(),
            });
        };
        let mut reply: Vec<u8> = Vec::new();
        let sy_reply = SyReply {
            ctx: (&raw mut reply).cast(),
            write: reply_write,
        };
        let code = {
            let _one_at_a_time = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
            if self.is_disabled() {
                return Err(CallError::Disabled {
                    module: self.name.clone(),
                });
            }
            on_message(
                self.state,
                c_name.as_ptr(),
                body.as_ptr(),
                body.len(),
                &raw const sy_reply,
            )
        };
        self.outcome(name, code, reply)
    }

    /// Hands the module one media frame of `stream`: interleaved samples, `channels` of them.
    /// Does not allocate unless it fails.
    pub fn frame(
        &self,
        stream: u64,
        samples: &[i16],
        rate: u32,
        channels: u16,
    ) -> Result<(), CallError> {
        if self.is_disabled() {
            return Err(CallError::Disabled {
                module: self.name.clone(),
            });
        }
        let Some(on_frame) = self.entry.on_frame else {
            return Err(self.unknown("frame"));
        };
        if channels == 0 || !samples.len().is_multiple_of(usize::from(channels)) {
            return Err(CallError::Failed {
                module: self.name.clone(),
                message: "frame".into(),
                code: SY_ERR_BAD_INPUT,
                detail: format!(
                    "{} samples do not split into {channels} channels",
                    samples.len()
                ),
            });
        }
        let frame = SyFrame {
            samples: samples.as_ptr(),
            count: samples.len() / usize::from(channels),
            rate,
            channels,
            format: SY_FORMAT_PCM_S16,
        };
        let code = {
            let _one_at_a_time = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
            if self.is_disabled() {
                return Err(CallError::Disabled {
                    module: self.name.clone(),
                });
            }
            on_frame(self.state, stream, &raw const frame)
        };
        self.outcome("frame", code, Vec::new()).map(drop)
    }

    fn unknown(&self, message: &str) -> CallError {
        CallError::UnknownMessage {
            module: self.name.clone(),
            message: message.to_owned(),
        }
    }

    /// Maps a module's return code to the caller's result; a panic disables the module.
    fn outcome(&self, message: &str, code: i32, reply: Vec<u8>) -> Result<Vec<u8>, CallError> {
        match code {
            SY_OK => Ok(reply),
            SY_ERR_UNKNOWN => Err(self.unknown(message)),
            SY_ERR_PANIC => {
                self.disabled.store(true, Ordering::Release);
                Err(CallError::Panicked {
                    module: self.name.clone(),
                })
            }
            code => Err(CallError::Failed {
                module: self.name.clone(),
                message: message.to_owned(),
                code,
                detail: String::from_utf8_lossy(&reply).into_owned(),
            }),
        }
    }
}

impl Drop for Module {
    fn drop(&mut self) {
        if let Some(unload) = self.entry.unload {
            let _one_at_a_time = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
            // Also for a disabled module: the SDK's `unload` catches a second panic, and
            // the module's resources are freed before its code is unmapped.
            unload(self.state);
        }
        // Then the host table, its context and last the library (dlclose) drop in field order.
    }
}

/// The host table's context: which module is calling, and the host it reaches.
struct HostContext {
    host: Arc<dyn Host>,
    module: String,
    /// Registrations are accepted only while the module's `load` runs.
    loading: AtomicBool,
}

/// The context behind a host-table call, or `None` for a null pointer.
fn context<'a>(ctx: *mut c_void) -> Option<&'a HostContext> {
    // SAFETY: every table the loader hands out has `ctx` pointing to its boxed
    // `HostContext`, which outlives the module's `unload`; modules only pass it back.
    (!ctx.is_null()).then(|| unsafe { &*ctx.cast::<HostContext>() })
}

/// A module's string argument, `None` if null or not UTF-8.
fn argument<'a>(ptr: *const c_char) -> Option<&'a str> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: the ABI requires NUL-terminated strings valid for the call.
    unsafe { CStr::from_ptr(ptr) }.to_str().ok()
}

extern "C" fn host_register(
    ctx: *mut c_void,
    kind: u32,
    name: *const c_char,
    help: *const c_char,
) -> i32 {
    let Some(context) = context(ctx) else {
        return SY_ERR_BAD_INPUT;
    };
    let (Some(kind), Some(name)) = (InterfaceKind::from_code(kind), argument(name)) else {
        return SY_ERR_BAD_INPUT;
    };
    let help = argument(help).unwrap_or("");
    // A panicking `Host` must not unwind into the module's (possibly C) frames.
    catch_unwind(AssertUnwindSafe(|| {
        if !context.loading.load(Ordering::Acquire) {
            let line = format!("cannot register {kind:?} {name} after load");
            context.host.log(&context.module, LogLevel::Warn, &line);
            return SY_ERR;
        }
        match context.host.register(&context.module, kind, name, help) {
            Ok(()) => SY_OK,
            Err(reason) => {
                let line = format!("registering {kind:?} {name} refused: {reason}");
                context.host.log(&context.module, LogLevel::Warn, &line);
                SY_ERR
            }
        }
    }))
    .unwrap_or(SY_ERR)
}

extern "C" fn host_send(ctx: *mut c_void, name: *const c_char, body: *const u8, len: usize) -> i32 {
    let Some(context) = context(ctx) else {
        return SY_ERR_BAD_INPUT;
    };
    let Some(name) = argument(name) else {
        return SY_ERR_BAD_INPUT;
    };
    if body.is_null() && len != 0 {
        return SY_ERR_BAD_INPUT;
    }
    let body: &[u8] = if len == 0 {
        &[]
    } else {
        // SAFETY: non-null and the module promises `len` bytes for the call.
        unsafe { std::slice::from_raw_parts(body, len) }
    };
    catch_unwind(AssertUnwindSafe(|| {
        context.host.send(&context.module, name, body);
        SY_OK
    }))
    .unwrap_or(SY_ERR)
}

extern "C" fn host_log(ctx: *mut c_void, level: u32, msg: *const c_char) {
    let Some(context) = context(ctx) else { return };
    if msg.is_null() {
        return;
    }
    // SAFETY: the ABI requires a NUL-terminated string valid for the call; non-UTF-8 bytes
    // are shown replaced rather than losing the line.
    let line = unsafe { CStr::from_ptr(msg) }.to_string_lossy();
    let _ = catch_unwind(AssertUnwindSafe(|| {
        context
            .host
            .log(&context.module, LogLevel::from_code(level), &line);
    }));
}

/// `SyReply::write`: copies the module's reply; a second write replaces the first.
extern "C" fn reply_write(ctx: *mut c_void, body: *const u8, len: usize) {
    if ctx.is_null() || (body.is_null() && len != 0) {
        return;
    }
    // SAFETY: `ctx` is the `Vec<u8>` that `Module::request` lent for this call, and nothing
    // else touches it until the module returns.
    let reply = unsafe { &mut *ctx.cast::<Vec<u8>>() };
    reply.clear();
    if len != 0 {
        // SAFETY: non-null and the module promises `len` bytes for the call.
        reply.extend_from_slice(unsafe { std::slice::from_raw_parts(body, len) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_come_from_file_names_before_the_entry_is_read() {
        assert_eq!(
            name_from_path(Path::new("/usr/lib/switchyard/libmod_skel.so")),
            "mod_skel"
        );
        assert_eq!(name_from_path(Path::new("mod_ivr.so")), "mod_ivr");
    }

    #[test]
    fn messages_name_the_module_and_what_differs() {
        let major = LoadError::AbiMajor {
            module: "mod_old".into(),
            module_major: 2,
            host_major: 1,
        };
        assert!(
            major
                .to_string()
                .starts_with("module mod_old was built for ABI 2.x, this switchyard speaks 1.0")
        );
        let minor = LoadError::AbiMinor {
            module: "mod_new".into(),
            module_minor: 3,
            host_minor: 0,
        };
        assert!(
            minor
                .to_string()
                .contains("module mod_new was built for ABI 1.3, newer than this switchyard's 1.0")
        );
        let magic = LoadError::BadMagic {
            path: "/m/x.so".into(),
            found: 0xdead_beef,
        };
        assert!(magic.to_string().contains("/m/x.so") && magic.to_string().contains("0xdeadbeef"));
    }

    #[test]
    fn a_missing_file_is_an_open_error_naming_the_path() {
        let error =
            Library::open(Path::new("/nonexistent/libmod_none.so")).expect_err("no such file");
        assert!(matches!(error, LoadError::Open { .. }), "{error:?}");
        assert!(
            error.to_string().contains("/nonexistent/libmod_none.so"),
            "{error}"
        );
    }
}
