use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use switchyard_console::{Client, Dispatch, Error, execute, run_script, serve};

/// A stand-in for the daemon's command set.
fn fake_dispatch() -> Dispatch {
    let counter = Arc::new(AtomicUsize::new(0));
    Arc::new(move |cmd: &str| {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        match cmd.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["status"] => Ok("UP".into()),
            ["show", "calls"] => {
                Ok("uuid,caller,callee\na,1000,1001\nb,1002,9196\n\n2 total.\n".into())
            }
            ["count"] => Ok(n.to_string()),
            ["echo", rest @ ..] => Ok(rest.join(" ")),
            ["silent"] => Ok(String::new()),
            ["panic"] => panic!("dispatch bug"),
            _ => Err(format!("unknown command: {cmd}")),
        }
    })
}

fn socket(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("console.sock")
}

#[test]
fn execute_round_trip_ok_err_and_multi_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket(&dir);
    let server = serve(&path, fake_dispatch()).unwrap();
    assert_eq!(server.path(), path);
    assert_eq!(execute(&path, "status").unwrap(), "UP");
    assert_eq!(
        execute(&path, "  show   calls \r").unwrap(),
        "uuid,caller,callee\na,1000,1001\nb,1002,9196\n\n2 total.\n"
    );
    assert_eq!(execute(&path, "silent").unwrap(), "");
    assert_eq!(execute(&path, "echo héllo wörld").unwrap(), "héllo wörld");
    match execute(&path, "frobnicate") {
        Err(Error::Command(body)) => assert_eq!(body, "unknown command: frobnicate"),
        other => panic!("{other:?}"),
    }
    match execute(&path, "") {
        Err(Error::Command(body)) => assert_eq!(body, "empty command"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(execute(&path, "a\nb"), Err(Error::Newline)));
    drop(server);
}

#[test]
fn raw_wire_format() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket(&dir);
    let _server = serve(&path, fake_dispatch()).unwrap();
    let mut s = UnixStream::connect(&path).unwrap();
    s.write_all(b"status\nnope\necho a\n").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = String::new();
    s.read_to_string(&mut got).unwrap();
    assert_eq!(got, "+OK 2\nUP-ERR 21\nunknown command: nope+OK 1\na");
}

#[test]
fn many_commands_on_one_connection_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket(&dir);
    let _server = serve(&path, fake_dispatch()).unwrap();
    let mut client = Client::connect(&path).unwrap();
    for i in 1..=200 {
        // The fake counts every dispatched command, the failing ones too.
        assert_eq!(
            client.command("count").unwrap(),
            Ok((2 * i - 1).to_string())
        );
        assert_eq!(
            client.command("bad").unwrap(),
            Err("unknown command: bad".into())
        );
    }
}

#[test]
fn client_disconnect_mid_way_and_panics_do_not_kill_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket(&dir);
    let _server = serve(&path, fake_dispatch()).unwrap();
    // Half a command, then gone.
    {
        let mut s = UnixStream::connect(&path).unwrap();
        s.write_all(b"show ca").unwrap();
    }
    // A command whose reply is never read.
    {
        let mut s = UnixStream::connect(&path).unwrap();
        s.write_all(b"show calls\nshow calls\n").unwrap();
    }
    // Connect and leave without a word.
    drop(UnixStream::connect(&path).unwrap());
    // A command that panics in the dispatcher.
    match execute(&path, "panic") {
        Err(Error::Command(body)) => assert!(body.contains("internal error"), "{body}"),
        other => panic!("{other:?}"),
    }
    // An overlong line is refused and the connection closed; the server stays.
    {
        let mut s = UnixStream::connect(&path).unwrap();
        let _ = s.write_all(&vec![b'x'; switchyard_console::MAX_COMMAND_LEN + 10]);
        let mut got = String::new();
        let _ = s.read_to_string(&mut got);
        assert!(got.starts_with("-ERR "), "{got}");
    }
    assert_eq!(execute(&path, "status").unwrap(), "UP");
}

#[test]
fn concurrent_clients() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket(&dir);
    let _server = serve(&path, fake_dispatch()).unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut c = Client::connect(&path).unwrap();
                for i in 0..50 {
                    let msg = format!("{t}-{i}");
                    assert_eq!(c.command(&format!("echo {msg}")).unwrap(), Ok(msg));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn socket_is_private_stale_file_replaced_live_one_refused_and_removed_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket(&dir);
    // A stale socket left by a killed daemon.
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let server = serve(&path, fake_dispatch()).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // A second daemon must not steal the socket of a running one.
    assert!(matches!(
        serve(&path, fake_dispatch()),
        Err(Error::InUse { .. })
    ));
    assert_eq!(execute(&path, "status").unwrap(), "UP");

    // An open idle connection does not keep shutdown waiting.
    let mut idle = Client::connect(&path).unwrap();
    server.shutdown();
    assert!(!path.exists());
    assert!(idle.command("status").is_err());
    let e = execute(&path, "status").unwrap_err().to_string();
    assert!(
        e.starts_with("is the daemon running? cannot connect to "),
        "{e}"
    );
    assert!(e.contains("console.sock"), "{e}");

    // A regular file in the way is not deleted.
    std::fs::write(&path, "precious").unwrap();
    assert!(serve(&path, fake_dispatch()).is_err());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
}

#[test]
fn script_mode_prints_bodies_and_errors_and_continues() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket(&dir);
    let _server = serve(&path, fake_dispatch()).unwrap();
    let input = "status\n\nbogus\nshow calls\nsilent\npanic\necho done\nquit\nstatus\n";
    let mut out = Vec::new();
    run_script(&path, input.as_bytes(), &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert_eq!(
        out,
        "UP\n-ERR unknown command: bogus\nuuid,caller,callee\na,1000,1001\nb,1002,9196\n\n2 total.\n\
         -ERR internal error while running: panic\ndone\n"
    );
}

#[test]
fn script_mode_without_daemon_reports_and_continues() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket(&dir);
    let mut out = Vec::new();
    run_script(&path, "status\nstatus\n".as_bytes(), &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(
        out.lines()
            .all(|l| l.starts_with("-ERR is the daemon running? cannot connect to ")),
        "{out}"
    );
}

#[test]
fn script_mode_reconnects_after_daemon_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket(&dir);
    let server = serve(&path, fake_dispatch()).unwrap();
    let (line_tx, line_rx) = std::sync::mpsc::channel::<String>();
    let (out_tx, out_rx) = std::sync::mpsc::channel::<()>();
    struct ChanReader(std::sync::mpsc::Receiver<String>, Vec<u8>);
    impl Read for ChanReader {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.1.is_empty() {
                match self.0.recv() {
                    Ok(l) => self.1 = l.into_bytes(),
                    Err(_) => return Ok(0),
                }
            }
            let n = buf.len().min(self.1.len());
            buf[..n].copy_from_slice(&self.1[..n]);
            self.1.drain(..n);
            Ok(n)
        }
    }
    struct Notify(Vec<u8>, std::sync::mpsc::Sender<()>);
    impl Write for Notify {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            let _ = self.1.send(());
            Ok(())
        }
    }
    let p = path.clone();
    let runner = std::thread::spawn(move || {
        let mut out = Notify(Vec::new(), out_tx);
        run_script(
            &p,
            std::io::BufReader::new(ChanReader(line_rx, Vec::new())),
            &mut out,
        )
        .unwrap();
        String::from_utf8(out.0).unwrap()
    });
    line_tx.send("count\n".into()).unwrap();
    out_rx.recv().unwrap();
    drop(server);
    let _server = serve(&path, fake_dispatch()).unwrap();
    line_tx.send("count\n".into()).unwrap();
    out_rx.recv().unwrap();
    drop(line_tx);
    // The second daemon's counter starts again: the session reconnected.
    assert_eq!(runner.join().unwrap(), "1\n1\n");
}

const CHILD_ENV: &str = "SWITCHYARD_CONSOLE_INTERACTIVE_CHILD";

/// `interactive()` with a piped (non-tty) stdin, as a script would drive `switchyard console`.
#[test]
fn interactive_with_piped_stdin() {
    if let Ok(sock) = std::env::var(CHILD_ENV) {
        switchyard_console::interactive(Path::new(&sock), &["status", "show calls"]).unwrap();
        println!("\nleft-console");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = socket(&dir);
    let _server = serve(&path, fake_dispatch()).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "interactive_with_piped_stdin",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"status\nnope\necho piped\nexit\necho after-exit\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("UP\n-ERR unknown command: nope\npiped\n"),
        "{stdout}"
    );
    assert!(!stdout.contains("after-exit"), "{stdout}");
    assert!(stdout.contains("left-console"), "{stdout}");
}
