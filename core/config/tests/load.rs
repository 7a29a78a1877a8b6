mod common;

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use common::{conf, err_of};
use switchyard_config::{DtmfMode, Error, add_user, load};

fn repo_dir(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

#[test]
fn shipped_default_conf_loads() {
    let dir = repo_dir("conf");
    let c = load(&dir).unwrap();
    let lo: SocketAddr = "127.0.0.1:5060".parse().unwrap();
    assert_eq!(c.sip.udp, vec![lo]);
    assert_eq!(c.sip.tcp, vec![lo]);
    assert_eq!((c.media.rtp_port_min, c.media.rtp_port_max), (16384, 32767));
    assert_eq!(c.sip.t1_ms, 500);
    assert_eq!(c.auth.max_register_expires, 3600);
    // No user with a guessable password ships.
    assert!(c.directory.users.is_empty());
    assert_eq!(c.conf_dir, dir);
}

#[test]
fn shipped_default_conf_matches_builtin_defaults() {
    // The commented file documents the defaults: it must not drift from the code.
    let shipped = load(&repo_dir("conf")).unwrap();
    let empty = conf(&[("switchyard.toml", "")]);
    let builtin = load(empty.path()).unwrap();
    assert_eq!(shipped.sip, builtin.sip);
    assert_eq!(shipped.media, builtin.media);
    assert_eq!(shipped.calls, builtin.calls);
    assert_eq!(shipped.auth, builtin.auth);
    assert_eq!(shipped.console, builtin.console);
    assert_eq!(shipped.recording, builtin.recording);
}

#[test]
fn test_basic_conf_loads() {
    let c = load(&repo_dir("tests/conf/basic")).unwrap();
    let lo: SocketAddr = "127.0.0.1:5060".parse().unwrap();
    assert_eq!(c.sip.udp, vec![lo]);
    assert_eq!(c.sip.tcp, vec![lo]);
    assert_eq!((c.media.rtp_port_min, c.media.rtp_port_max), (20000, 20999));
    assert_eq!(c.media.rtp_timeout_secs, 10);
    assert_eq!(c.calls.no_answer_timeout_secs, 30);
    assert_eq!(c.directory.users.len(), 12);
    for i in 1000..1012 {
        let u = c.directory.get(&i.to_string()).unwrap();
        assert_eq!(u.password, format!("pass{i}"));
        assert!(u.enabled);
    }
    assert_eq!(c.directory.get("1000").unwrap().dtmf, DtmfMode::Auto);
    assert_eq!(c.directory.get("1010").unwrap().dtmf, DtmfMode::Info);
    assert_eq!(c.directory.get("1011").unwrap().dtmf, DtmfMode::Inband);
}

#[test]
fn empty_main_file_gives_defaults_and_missing_one_is_an_error() {
    let dir = conf(&[("switchyard.toml", "")]);
    let c = load(dir.path()).unwrap();
    assert_eq!(c.calls.no_answer_timeout_secs, 60);
    assert_eq!(c.calls.shutdown_grace_secs, 30);
    assert_eq!(c.media.rtp_timeout_secs, 60);
    assert_eq!(c.auth.nonce_ttl_secs, 300);
    assert_eq!(c.console.socket, PathBuf::from("console.sock"));
    assert_eq!(
        c.console.socket_path(Path::new("/var/lib/sy")),
        PathBuf::from("/var/lib/sy/console.sock")
    );

    let empty = tempfile::tempdir().unwrap();
    let e = load(empty.path()).unwrap_err().to_string();
    assert!(e.contains("switchyard.toml"), "{e}");
}

#[test]
fn typo_key_is_reported_with_file_line_and_column() {
    let e = err_of(&[(
        "switchyard.toml",
        "[sip]\ndomain = \"x\"\n\n[media]\nrtp_port_mn = 20000\n",
    )]);
    assert!(e.contains("switchyard.toml:5:1:"), "{e}");
    assert!(e.contains("rtp_port_mn"), "{e}");

    for (text, needle) in [
        ("[media]\ncodecs = [\"G729\"]\n", "unknown codec \"G729\""),
        (
            "[media]\nconference_rate = 44100\n",
            "conference_rate 44100",
        ),
        (
            "[recording]\nmode = \"stereo\"\n",
            "the policy of mod_recorder",
        ),
        ("[recording]\nsample_rate = 4000\n", "sample_rate 4000"),
    ] {
        let e = err_of(&[("switchyard.toml", text)]);
        assert!(e.contains("switchyard.toml:"), "{text}: {e}");
        assert!(e.contains(needle), "{text}: {e}");
    }

    let e = err_of(&[("switchyard.toml", "[sipp]\n")]);
    assert!(e.contains("switchyard.toml:1:"), "{e}");
    assert!(e.contains("sipp"), "{e}");

    let e = err_of(&[
        ("switchyard.toml", ""),
        ("directory/1000.toml", "id = \"1000\"\npasword = \"x\"\n"),
    ]);
    assert!(e.contains("1000.toml:2:1:"), "{e}");
    assert!(e.contains("pasword"), "{e}");
}

#[test]
fn bad_values_are_rejected_naming_the_file() {
    for (text, needle) in [
        ("[media]\nrtp_port_min = 20001\n", "even"),
        (
            "[media]\nrtp_port_min = 20000\nrtp_port_max = 20000\n",
            "below rtp_port_max",
        ),
        (
            "[media]\nrtp_port_min = 30000\nrtp_port_max = 20000\n",
            "below rtp_port_max",
        ),
        (
            "[media]\nrtp_port_max = 70000\n",
            ":2:16: invalid value: integer `70000`",
        ),
        ("[media]\nrtp_ip = \"0.0.0.0\"\n", "rtp_ip"),
        (
            "[sip]\nudp = [\"127.0.0.1:99999\"]\n",
            ":2:8: invalid socket address",
        ),
        ("[sip]\nudp = []\ntcp = []\n", "at least one"),
        ("[sip]\ntcp = [\"127.0.0.1:0\"]\n", "port 0"),
        (
            "[auth]\nmin_register_expires = 4000\n",
            "min_register_expires",
        ),
        (
            "[calls]\nmax_calls = -1\n",
            ":2:13: invalid value: integer `-1`",
        ),
    ] {
        let e = err_of(&[("switchyard.toml", text)]);
        assert!(e.contains("switchyard.toml"), "{text}: {e}");
        assert!(e.contains(needle), "{text}: {e}");
    }
    // Validation errors point at the line of the offending key.
    let e = err_of(&[(
        "switchyard.toml",
        "[sip]\n\n[media]\nrtp_port_min = 20001\n",
    )]);
    assert!(e.contains("switchyard.toml:4:"), "{e}");
}

#[test]
fn directory_rules() {
    let main = ("switchyard.toml", "");
    let dir = conf(&[
        main,
        ("directory/README.md", "not a user"),
        ("directory/.1001.toml.swp", "garbage"),
        (
            "directory/1001.toml",
            "password = \"s3cret\"\nenabled = false\n",
        ),
        (
            "directory/alice.toml",
            "id = \"alice\"\npassword = \"p\"\ndisplay_name = \"Alice A\"\n",
        ),
    ]);
    let c = load(dir.path()).unwrap();
    assert_eq!(
        c.directory.users.keys().collect::<Vec<_>>(),
        ["1001", "alice"]
    );
    let u = c.directory.get("1001").unwrap();
    assert_eq!(u.id, "1001");
    assert!(!u.enabled);
    assert_eq!(u.display_name, None);
    assert_eq!(
        c.directory.get("alice").unwrap().display_name.as_deref(),
        Some("Alice A")
    );

    let e = err_of(&[
        main,
        ("directory/1000.toml", "id = \"1001\"\npassword = \"p\"\n"),
    ]);
    assert!(
        e.contains("1000.toml:1:") && e.contains("does not match"),
        "{e}"
    );
    let e = err_of(&[main, ("directory/a-b.toml", "password = \"p\"\n")]);
    assert!(
        e.contains("a-b.toml") && e.contains("letters and digits"),
        "{e}"
    );
    let e = err_of(&[main, ("directory/1000.toml", "id = \"1000\"\n")]);
    assert!(e.contains("1000.toml") && e.contains("password"), "{e}");
    let e = err_of(&[main, ("directory/1000.toml", "password = \"\"\n")]);
    assert!(e.contains("empty password"), "{e}");
}

#[test]
fn add_user_writes_a_loadable_private_user_and_refuses_duplicates() {
    use std::os::unix::fs::PermissionsExt;
    let dir = conf(&[("switchyard.toml", "")]);
    let pw = add_user(dir.path(), "1000", Some("Front \"desk\"")).unwrap();
    assert_eq!(pw.len(), 16);
    assert!(pw.bytes().all(|b| b.is_ascii_alphanumeric()));
    let path = dir.path().join("directory/1000.toml");
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let c = load(dir.path()).unwrap();
    let u = c.directory.get("1000").unwrap();
    assert_eq!(u.password, pw);
    assert_eq!(u.display_name.as_deref(), Some("Front \"desk\""));
    assert!(u.enabled);

    let pw2 = add_user(dir.path(), "1001", None).unwrap();
    assert_ne!(pw, pw2, "passwords are random");

    match add_user(dir.path(), "1000", None) {
        Err(Error::UserExists { id, .. }) => assert_eq!(id, "1000"),
        other => panic!("duplicate add: {other:?}"),
    }
    // The refused add left the original untouched.
    assert_eq!(
        load(dir.path())
            .unwrap()
            .directory
            .get("1000")
            .unwrap()
            .password,
        pw
    );

    assert!(matches!(
        add_user(dir.path(), "../x", None),
        Err(Error::InvalidUserId(_))
    ));
    assert!(matches!(
        add_user(dir.path(), "", None),
        Err(Error::InvalidUserId(_))
    ));
}
