//! The master key: the one secret that opens every encrypted recording.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::Error;

/// Length of a [`MasterKey`] in bytes (AES-256).
pub const MASTER_KEY_LEN: usize = 32;

/// Bytes of the key id written in every encrypted file's header.
pub(crate) const KEY_ID_LEN: usize = 8;

/// The 256-bit master key. It never encrypts audio itself: each recording gets a random data
/// key, and only that data key is encrypted ("wrapped") with the master key (see the crate docs).
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey([u8; MASTER_KEY_LEN]);

impl fmt::Debug for MasterKey {
    /// Shows the key id, never the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey(id {})", hex::encode(self.id()))
    }
}

impl MasterKey {
    /// Parses 64 hex digits (surrounding whitespace is ignored).
    pub fn from_hex(s: &str) -> Result<Self, Error> {
        let mut key = [0u8; MASTER_KEY_LEN];
        hex::decode_to_slice(s.trim(), &mut key).map_err(|e| {
            Error::InvalidKey(format!(
                "a master key is {} hex digits: {e}",
                MASTER_KEY_LEN * 2
            ))
        })?;
        Ok(MasterKey(key))
    }

    /// Reads a key file holding 64 hex digits. The file must not be readable or writable by
    /// group or others (mode 0600 or 0400): a recording key left world-readable is refused
    /// rather than used, like ssh refuses such a private key.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let io = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::KeyFilePermissions {
                path: path.to_owned(),
                mode,
            });
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        Self::from_hex(&text).map_err(|e| match e {
            Error::InvalidKey(why) => Error::InvalidKey(format!("{}: {why}", path.display())),
            other => other,
        })
    }

    /// A fresh random key from the thread-local CSPRNG (ChaCha12 seeded by the OS).
    pub fn generate() -> MasterKey {
        let mut key = [0u8; MASTER_KEY_LEN];
        rand::rng().fill_bytes(&mut key);
        MasterKey(key)
    }

    /// The key as 64 lowercase hex digits, the format [`MasterKey::load`] reads.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub(crate) fn bytes(&self) -> &[u8; MASTER_KEY_LEN] {
        &self.0
    }

    /// A public fingerprint of the key, stored in each file's header so that `decrypt` can tell
    /// "this file was sealed with another key" apart from "this file was altered". It is a
    /// domain-separated hash: it reveals nothing usable about the key.
    pub(crate) fn id(&self) -> [u8; KEY_ID_LEN] {
        let digest = Sha256::new()
            .chain_update(b"switchyard-recording key id v1")
            .chain_update(self.0)
            .finalize();
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn hex_round_trip_and_whitespace() {
        let key = MasterKey::from_hex(&format!("  {HEX}\n")).unwrap();
        assert_eq!(key.to_hex(), HEX);
        assert_eq!(key.bytes()[31], 0x1f);
        assert!(
            !format!("{key:?}").contains(HEX),
            "Debug must not print the key"
        );
    }

    #[test]
    fn bad_hex_is_refused() {
        for bad in [
            "",
            "00",
            &HEX[..62],
            &format!("{HEX}00"),
            &HEX.replace('0', "g"),
        ] {
            assert!(
                matches!(MasterKey::from_hex(bad), Err(Error::InvalidKey(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn generated_keys_differ() {
        let a = MasterKey::generate();
        let b = MasterKey::generate();
        assert_ne!(a, b);
        assert_ne!(a.id(), b.id());
        assert_eq!(MasterKey::from_hex(&a.to_hex()).unwrap(), a);
    }

    #[test]
    fn key_file_permissions_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recording.key");
        std::fs::write(&path, format!("{HEX}\n")).unwrap();
        for mode in [0o644, 0o640, 0o604, 0o660, 0o602] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            match MasterKey::load(&path) {
                Err(e @ Error::KeyFilePermissions { .. }) => {
                    let msg = e.to_string();
                    assert!(msg.contains("chmod 600"), "{msg}");
                    assert!(msg.contains(&format!("{mode:o}")), "{msg}");
                }
                other => panic!("mode {mode:o}: {other:?}"),
            }
        }
        for mode in [0o600, 0o400] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(MasterKey::load(&path).unwrap().to_hex(), HEX);
        }
        std::fs::write(&path, "not a key").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        match MasterKey::load(&path) {
            Err(Error::InvalidKey(why)) => assert!(why.contains("recording.key"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            MasterKey::load(&dir.path().join("missing")),
            Err(Error::Io { .. })
        ));
    }
}
