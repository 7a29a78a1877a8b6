//! A deliberately panicking module: `app.run` panics; `command` answers (to show a
//! disabled module is not entered again). With feature `panic_in_load`, `load` panics.

use switchyard_abi::InterfaceKind;
use switchyard_abi::sdk::{HostApi, MessageError, Module};

struct Panicky;

impl Module for Panicky {
    fn load(host: &HostApi) -> Result<Self, String> {
        if cfg!(feature = "panic_in_load") {
            panic!("mod_panic told to panic in load");
        }
        host.register(InterfaceKind::Application, "panic_now", "panics")?;
        Ok(Panicky)
    }

    fn message(
        &mut self,
        _host: &HostApi,
        name: &str,
        _body: &[u8],
    ) -> Result<Vec<u8>, MessageError> {
        match name {
            "app.run" => panic!("mod_panic panics in app.run"),
            "command" => Ok(br#"{"ok":true,"text":"still here"}"#.to_vec()),
            _ => Err(MessageError::Unknown),
        }
    }
}

switchyard_abi::declare_module!(name = "mod_panic", version = "0.0.1", module = Panicky);
