//! The SDK's trampolines driven through the raw entry, as a host would: a fake host table
//! records what the module registers and logs, replies are collected through `SyReply`.

use std::ffi::{CStr, CString, c_char, c_void};
use std::sync::Mutex;

use switchyard_abi::sdk::{Frame, HostApi, MessageError, Module};
use switchyard_abi::*;

struct Probe {
    frames: usize,
}

impl Module for Probe {
    fn load(host: &HostApi) -> Result<Self, String> {
        if host.abi() != (SY_ABI_MAJOR, SY_ABI_MINOR) {
            return Err(format!("unexpected host ABI {:?}", host.abi()));
        }
        host.register(InterfaceKind::Command, "probe", "probe: test command")?;
        if host
            .register(InterfaceKind::Application, "refused", "")
            .is_ok()
        {
            return Err("the host was to refuse \"refused\"".into());
        }
        host.log(LogLevel::Info, "probe loaded");
        Ok(Probe { frames: 0 })
    }

    fn message(
        &mut self,
        host: &HostApi,
        name: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, MessageError> {
        match name {
            "echo" => Ok(body.to_vec()),
            "send" => host
                .send("console", body)
                .map(|()| Vec::new())
                .map_err(MessageError::Failed),
            "frames" => Ok(self.frames.to_string().into_bytes()),
            "bad" => Err(MessageError::BadInput("not JSON".into())),
            "panic" => panic!("probe told to panic"),
            _ => Err(MessageError::Unknown),
        }
    }

    fn frame(
        &mut self,
        _host: &HostApi,
        _stream: u64,
        frame: Frame<'_>,
    ) -> Result<(), MessageError> {
        if frame.samples.len() != 320 || frame.channels != 2 || frame.rate != 8000 {
            return Err(MessageError::BadInput(format!("{frame:?}")));
        }
        self.frames += 1;
        Ok(())
    }
}

switchyard_abi::declare_module!(name = "mod_probe", version = "9.8.7", module = Probe);

/// What the fake host saw.
#[derive(Default)]
struct Seen {
    registered: Vec<(u32, String, String)>,
    sent: Vec<(String, Vec<u8>)>,
    logged: Vec<(u32, String)>,
}

static SEEN: Mutex<Option<Seen>> = Mutex::new(None);
/// The tests share one fake host's record; run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn with_seen<R>(f: impl FnOnce(&mut Seen) -> R) -> R {
    let mut guard = SEEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    f(guard.get_or_insert_with(Seen::default))
}

fn text(ptr: *const c_char) -> String {
    // SAFETY: the SDK passes NUL-terminated strings valid for the call.
    unsafe { CStr::from_ptr(ptr) }
        .to_str()
        .expect("UTF-8")
        .to_owned()
}

extern "C" fn register(
    _ctx: *mut c_void,
    kind: u32,
    name: *const c_char,
    help: *const c_char,
) -> i32 {
    let name = text(name);
    if name == "refused" {
        return SY_ERR;
    }
    with_seen(|s| s.registered.push((kind, name, text(help))));
    SY_OK
}

extern "C" fn send(_ctx: *mut c_void, name: *const c_char, body: *const u8, len: usize) -> i32 {
    // SAFETY: the SDK passes `len` bytes at `body`.
    let body = unsafe { std::slice::from_raw_parts(body, len) }.to_vec();
    with_seen(|s| s.sent.push((text(name), body)));
    SY_OK
}

extern "C" fn log(_ctx: *mut c_void, level: u32, msg: *const c_char) {
    let msg = text(msg);
    with_seen(|s| s.logged.push((level, msg)));
}

extern "C" fn write_reply(ctx: *mut c_void, body: *const u8, len: usize) {
    // SAFETY: ctx is the `Vec<u8>` `request` lent; `len` bytes at `body`.
    unsafe { (*ctx.cast::<Vec<u8>>()).extend_from_slice(std::slice::from_raw_parts(body, len)) };
}

fn host_table() -> SyHost {
    SyHost {
        size: size_of::<SyHost>() as u32,
        abi_major: SY_ABI_MAJOR,
        abi_minor: SY_ABI_MINOR,
        ctx: std::ptr::null_mut(),
        register_interface: register,
        send,
        log,
    }
}

fn request(state: *mut c_void, name: &str, body: &[u8]) -> (i32, Vec<u8>) {
    let mut out = Vec::new();
    let reply = SyReply {
        ctx: (&raw mut out).cast(),
        write: write_reply,
    };
    let name = CString::new(name).expect("no NUL");
    let on_message = switchyard_module.on_message.expect("on_message");
    let code = on_message(state, name.as_ptr(), body.as_ptr(), body.len(), &reply);
    (code, out)
}

#[test]
fn entry_describes_the_module() {
    let entry = &switchyard_module;
    assert_eq!(entry.magic, SY_MAGIC);
    assert_eq!(
        (entry.abi_major, entry.abi_minor),
        (SY_ABI_MAJOR, SY_ABI_MINOR)
    );
    assert_eq!(entry.size as usize, size_of::<SyModule>());
    assert_eq!(text(entry.name), "mod_probe");
    assert_eq!(text(entry.version), "9.8.7");
    // The macro spells the ABI version as a literal; it must follow the constants.
    assert_eq!(
        text(entry.build_hash),
        format!(
            "{}+abi{SY_ABI_MAJOR}.{SY_ABI_MINOR}",
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[test]
fn load_message_frame_unload_through_the_trampolines() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    with_seen(|s| *s = Seen::default());
    let host = host_table();
    let mut state: *mut c_void = std::ptr::null_mut();
    assert_eq!(
        (switchyard_module.load.expect("load"))(&host, &mut state),
        SY_OK
    );
    assert!(!state.is_null());
    with_seen(|s| {
        assert_eq!(
            s.registered,
            vec![(SY_IF_COMMAND, "probe".into(), "probe: test command".into())]
        );
        assert_eq!(s.logged, vec![(SY_LOG_INFO, "probe loaded".into())]);
    });

    assert_eq!(
        request(state, "echo", br#"{"a":1}"#),
        (SY_OK, br#"{"a":1}"#.to_vec())
    );
    assert_eq!(request(state, "echo", b""), (SY_OK, Vec::new()));
    assert_eq!(request(state, "nope", b"{}"), (SY_ERR_UNKNOWN, Vec::new()));
    assert_eq!(
        request(state, "bad", b"{}"),
        (SY_ERR_BAD_INPUT, b"not JSON".to_vec())
    );
    assert_eq!(request(state, "send", br#"{"line":"hupall"}"#).0, SY_OK);
    with_seen(|s| {
        assert_eq!(
            s.sent,
            vec![("console".into(), br#"{"line":"hupall"}"#.to_vec())]
        )
    });

    let samples = [0i16; 320];
    let frame = SyFrame {
        samples: samples.as_ptr(),
        count: 160,
        rate: 8000,
        channels: 2,
        format: SY_FORMAT_PCM_S16,
    };
    let on_frame = switchyard_module.on_frame.expect("on_frame");
    assert_eq!(on_frame(state, 7, &frame), SY_OK);
    let mono = SyFrame {
        channels: 1,
        ..frame
    };
    assert_eq!(on_frame(state, 7, &mono), SY_ERR_BAD_INPUT);
    assert_eq!(request(state, "frames", b""), (SY_OK, b"1".to_vec()));

    (switchyard_module.unload.expect("unload"))(state);
}

#[test]
fn a_panic_is_caught_logged_and_answered_with_sy_err_panic() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    with_seen(|s| *s = Seen::default());
    let host = host_table();
    let mut state: *mut c_void = std::ptr::null_mut();
    assert_eq!(
        (switchyard_module.load.expect("load"))(&host, &mut state),
        SY_OK
    );
    assert_eq!(request(state, "panic", b"{}"), (SY_ERR_PANIC, Vec::new()));
    with_seen(|s| {
        let last = s.logged.last().expect("the panic is logged");
        assert_eq!(last.0, SY_LOG_ERROR);
        assert!(
            last.1.contains("panicked in panic: probe told to panic"),
            "{}",
            last.1
        );
    });
    (switchyard_module.unload.expect("unload"))(state);
}

#[test]
fn load_refuses_a_host_of_another_major_or_a_short_table() {
    let mut state: *mut c_void = std::ptr::null_mut();
    let load = switchyard_module.load.expect("load");
    let other_major = SyHost {
        abi_major: SY_ABI_MAJOR + 1,
        ..host_table()
    };
    assert_eq!(load(&other_major, &mut state), SY_ERR_BAD_INPUT);
    let short = SyHost {
        size: 16,
        ..host_table()
    };
    assert_eq!(load(&short, &mut state), SY_ERR_BAD_INPUT);
    assert_eq!(load(std::ptr::null(), &mut state), SY_ERR_BAD_INPUT);
    assert!(state.is_null(), "no state is made for a refused host");
}

#[test]
fn message_errors_map_to_codes_and_read_well() {
    assert_eq!(MessageError::Unknown.code(), SY_ERR_UNKNOWN);
    assert_eq!(MessageError::BadInput("x".into()).code(), SY_ERR_BAD_INPUT);
    assert_eq!(MessageError::Failed("x".into()).code(), SY_ERR);
    assert_eq!(
        MessageError::BadInput("no uuid".into()).to_string(),
        "bad input: no uuid"
    );
    assert_eq!(
        MessageError::Failed("disk full".into()).to_string(),
        "disk full"
    );
    assert_eq!(MessageError::Unknown.to_string(), "unknown message");
}
