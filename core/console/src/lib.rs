//! switchyard-console: the operator console transport.
//!
//! The daemon listens on a unix stream socket (mode 0600: whoever can open it controls the
//! switch). The wire protocol is line-in, length-prefixed-out, so bodies may span lines:
//!
//! ```text
//! client: show calls\n
//! server: +OK 27\n<27 bytes of body>
//! client: frobnicate\n
//! server: -ERR 24\nunknown command: frobnicate
//! ```
//!
//! A connection carries any number of commands, answered in order. The command set itself is
//! the daemon's [`Dispatch`] function, shared with the REST API; this crate only carries it.
//! Each connection gets a thread: this is the control plane, a handful of operators, not a
//! hot path.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::fs;
use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// The daemon's command interpreter: a command line in, a reply body or an error body out.
pub type Dispatch = Arc<dyn Fn(&str) -> Result<String, String> + Send + Sync>;

/// Longest command line accepted; a console command is a few words.
pub const MAX_COMMAND_LEN: usize = 64 * 1024;

/// Prompt of the interactive console.
pub const PROMPT: &str = "switchyard> ";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The daemon is not there (or the socket is not ours to open).
    #[error("is the daemon running? cannot connect to {}: {source}", path.display())]
    Connect {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The daemon answered `-ERR`; the body says why.
    #[error("{0}")]
    Command(String),
    /// Another daemon is already listening on the socket.
    #[error("{} is in use by a running daemon", path.display())]
    InUse { path: PathBuf },
    /// A command with a newline cannot be sent: the newline ends a command on the wire.
    #[error("a command cannot contain a newline")]
    Newline,
    /// The peer broke the wire protocol.
    #[error("console protocol error: {0}")]
    Protocol(String),
    #[error("line editor: {0}")]
    Editor(String),
    #[error(transparent)]
    Io(#[from] io::Error),
}

// ---------------------------------------------------------------------------------------------
// Server

/// A listening console. Dropping it (or [`ConsoleServer::shutdown`]) stops accepting, closes the
/// open connections and removes the socket file.
pub struct ConsoleServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    connections: Arc<Mutex<HashMap<u64, UnixStream>>>,
    acceptor: Option<JoinHandle<()>>,
}

impl ConsoleServer {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        let Some(acceptor) = self.acceptor.take() else {
            return;
        };
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept(); it sees the flag and returns.
        let _ = UnixStream::connect(&self.path);
        let _ = acceptor.join();
        for (_, conn) in self
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
        {
            let _ = conn.shutdown(std::net::Shutdown::Both);
        }
        let _ = fs::remove_file(&self.path);
    }
}

impl Drop for ConsoleServer {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Listens on `path` and answers every command line with `dispatch`. A stale socket file (no
/// daemon behind it) is removed first; a live one is [`Error::InUse`].
pub fn serve(path: &Path, dispatch: Dispatch) -> Result<ConsoleServer, Error> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if UnixStream::connect(path).is_ok() {
                return Err(Error::InUse {
                    path: path.to_path_buf(),
                });
            }
            fs::remove_file(path)?;
        }
        Ok(_) => {
            return Err(Error::Io(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            )));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    // Bind under a temporary name, restrict it, then rename into place, so the socket is
    // never reachable with the umask's permissions.
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let _ = fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp)?;
    let placed = fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = placed {
        let _ = fs::remove_file(&tmp);
        return Err(e.into());
    }

    let stop = Arc::new(AtomicBool::new(false));
    let connections = Arc::new(Mutex::new(HashMap::new()));
    let acceptor = {
        let stop = stop.clone();
        let connections = connections.clone();
        std::thread::Builder::new()
            .name("console-accept".into())
            .spawn(move || accept_loop(listener, dispatch, stop, connections))?
    };
    Ok(ConsoleServer {
        path: path.to_path_buf(),
        stop,
        connections,
        acceptor: Some(acceptor),
    })
}

fn accept_loop(
    listener: UnixListener,
    dispatch: Dispatch,
    stop: Arc<AtomicBool>,
    connections: Arc<Mutex<HashMap<u64, UnixStream>>>,
) {
    let mut next_id = 0u64;
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "console accept failed");
                continue;
            }
        };
        next_id += 1;
        let id = next_id;
        if let Ok(clone) = stream.try_clone() {
            connections
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id, clone);
        }
        let dispatch = dispatch.clone();
        let connections = connections.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("console-{id}"))
            .spawn(move || {
                if let Err(e) = serve_connection(stream, &dispatch) {
                    tracing::debug!(error = %e, "console connection ended");
                }
                connections
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start console connection thread");
        }
    }
}

fn serve_connection(stream: UnixStream, dispatch: &Dispatch) -> io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = io::BufWriter::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_COMMAND_LEN as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(()); // client closed
        }
        // Without a newline either the line is too long or the client closed mid-line; the
        // fragment of a closed client still runs (the next read returns 0 and ends the loop).
        if line.last() != Some(&b'\n') && line.len() > MAX_COMMAND_LEN {
            write_reply(
                &mut writer,
                &Err(format!("command longer than {MAX_COMMAND_LEN} bytes")),
            )?;
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line);
        let command = text.trim();
        let reply = if command.is_empty() {
            Err("empty command".to_owned())
        } else {
            // A panicking command must not take the console down with it.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| dispatch(command)))
                .unwrap_or_else(|_| Err(format!("internal error while running: {command}")))
        };
        write_reply(&mut writer, &reply)?;
    }
}

fn write_reply(w: &mut impl Write, reply: &Result<String, String>) -> io::Result<()> {
    let (tag, body) = match reply {
        Ok(b) => ("+OK", b),
        Err(b) => ("-ERR", b),
    };
    writeln!(w, "{tag} {}", body.len())?;
    w.write_all(body.as_bytes())?;
    w.flush()
}

// ---------------------------------------------------------------------------------------------
// Client

/// One connection to the daemon's console, for many commands.
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    pub fn connect(path: &Path) -> Result<Client, Error> {
        let stream = UnixStream::connect(path).map_err(|source| Error::Connect {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Client {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    /// Sends one command; `Ok(Ok(body))` for `+OK`, `Ok(Err(body))` for `-ERR`, `Err` when the
    /// connection or the protocol failed.
    pub fn command(&mut self, command: &str) -> Result<Result<String, String>, Error> {
        if command.contains('\n') {
            return Err(Error::Newline);
        }
        let mut wire = Vec::with_capacity(command.len() + 1);
        wire.extend_from_slice(command.as_bytes());
        wire.push(b'\n');
        self.writer.write_all(&wire)?;
        read_reply(&mut self.reader)
    }
}

fn read_reply(r: &mut impl BufRead) -> Result<Result<String, String>, Error> {
    let mut head = String::new();
    if r.read_line(&mut head)? == 0 {
        return Err(Error::Protocol("the daemon closed the connection".into()));
    }
    let head = head.trim_end_matches(['\r', '\n']);
    let (ok, len) = if let Some(len) = head.strip_prefix("+OK ") {
        (true, len)
    } else if let Some(len) = head.strip_prefix("-ERR ") {
        (false, len)
    } else {
        return Err(Error::Protocol(format!("unexpected reply line {head:?}")));
    };
    let len: usize = len
        .parse()
        .map_err(|_| Error::Protocol(format!("bad length in {head:?}")))?;
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    let body = String::from_utf8_lossy(&body).into_owned();
    Ok(if ok { Ok(body) } else { Err(body) })
}

/// Runs one command (`switchyard ctl "show calls"`): the reply body, or
/// [`Error::Command`] with the daemon's error text.
pub fn execute(path: &Path, command: &str) -> Result<String, Error> {
    Client::connect(path)?
        .command(command)?
        .map_err(Error::Command)
}

// ---------------------------------------------------------------------------------------------
// Interactive console

/// A console session: one connection, re-established once if the daemon restarted.
struct Session<'a> {
    path: &'a Path,
    client: Option<Client>,
}

impl Session<'_> {
    fn run(&mut self, command: &str) -> Result<String, Error> {
        for attempt in 0..2 {
            let client = match &mut self.client {
                Some(c) => c,
                None => self.client.insert(Client::connect(self.path)?),
            };
            match client.command(command) {
                Ok(reply) => return reply.map_err(Error::Command),
                // Retry only when the write failed (EPIPE: the daemon restarted since our last
                // command), so a command the daemon may have run is never sent twice.
                Err(Error::Io(e)) if attempt == 0 && e.kind() == io::ErrorKind::BrokenPipe => {
                    self.client = None;
                }
                Err(e) => {
                    self.client = None;
                    return Err(e);
                }
            }
        }
        Err(Error::Protocol("the daemon closed the connection".into()))
    }

    /// Runs one input line and prints its outcome. Returns false when the user asked to leave.
    fn line(&mut self, line: &str, out: &mut impl Write) -> io::Result<bool> {
        let command = line.trim();
        match command {
            "" => return Ok(true),
            "exit" | "quit" => return Ok(false),
            _ => {}
        }
        match self.run(command) {
            Ok(body) => {
                out.write_all(body.as_bytes())?;
                if !body.is_empty() && !body.ends_with('\n') {
                    out.write_all(b"\n")?;
                }
            }
            Err(Error::Command(body)) => writeln!(out, "-ERR {}", body.trim_end())?,
            Err(e) => writeln!(out, "-ERR {e}")?,
        }
        out.flush()?;
        Ok(true)
    }
}

/// The non-terminal console: reads command lines from `input`, writes replies to `output`
/// (errors as `-ERR ...`), until end of input or `exit`/`quit`. Used when stdin is a pipe.
pub fn run_script(path: &Path, input: impl BufRead, mut output: impl Write) -> Result<(), Error> {
    let mut session = Session { path, client: None };
    for line in input.lines() {
        if !session.line(&line?, &mut output)? {
            break;
        }
    }
    Ok(())
}

/// `switchyard console`: line editing, history in `$HOME/.switchyard_history`, tab completion
/// over `commands`. With a non-terminal stdin it runs [`run_script`] over stdin instead.
pub fn interactive(path: &Path, commands: &[&str]) -> Result<(), Error> {
    if !io::stdin().is_terminal() {
        return run_script(path, io::stdin().lock(), io::stdout().lock());
    }
    use rustyline::error::ReadlineError;

    let config = rustyline::Config::builder()
        .completion_type(rustyline::CompletionType::List)
        .auto_add_history(true)
        .build();
    let mut editor: rustyline::Editor<CommandCompleter, rustyline::history::DefaultHistory> =
        rustyline::Editor::with_config(config).map_err(|e| Error::Editor(e.to_string()))?;
    editor.set_helper(Some(CommandCompleter::new(commands)));
    let history = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".switchyard_history"));
    if let Some(h) = &history {
        let _ = editor.load_history(h); // absent on first use
    }
    let mut session = Session { path, client: None };
    let mut stdout = io::stdout();
    loop {
        match editor.readline(PROMPT) {
            Ok(line) => {
                if !session.line(&line, &mut stdout)? {
                    break;
                }
            }
            Err(ReadlineError::Interrupted) => continue, // Ctrl-C clears the line, as in a shell
            Err(ReadlineError::Eof) => break,            // Ctrl-D
            Err(e) => return Err(Error::Editor(e.to_string())),
        }
    }
    if let Some(h) = &history
        && let Err(e) = editor.save_history(h)
    {
        eprintln!("cannot save history to {}: {e}", h.display());
    }
    Ok(())
}

/// Tab completion over multi-word commands ("show calls", "show channels").
pub struct CommandCompleter {
    commands: Vec<Vec<String>>,
}

impl CommandCompleter {
    pub fn new(commands: &[&str]) -> Self {
        let mut commands: Vec<Vec<String>> = commands
            .iter()
            .chain(["exit", "quit"].iter())
            .map(|c| c.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
            .filter(|w| !w.is_empty())
            .collect();
        commands.sort();
        commands.dedup();
        CommandCompleter { commands }
    }

    /// Completes the word under the cursor: returns where it starts and the candidate
    /// replacements. A candidate ends with a space when every command it belongs to continues.
    pub fn complete_at(&self, line: &str, pos: usize) -> (usize, Vec<String>) {
        let before = &line[..pos];
        let start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
        let typed: Vec<&str> = before[..start].split_whitespace().collect();
        let partial = &before[start..];
        let mut out: Vec<String> = Vec::new();
        for cmd in &self.commands {
            if cmd.len() <= typed.len() || !cmd.iter().zip(&typed).all(|(a, b)| a == b) {
                continue;
            }
            let word = &cmd[typed.len()];
            if !word.starts_with(partial) {
                continue;
            }
            let ends_here = self.commands.iter().any(|c| {
                c.len() == typed.len() + 1
                    && c[..typed.len()] == cmd[..typed.len()]
                    && &c[typed.len()] == word
            });
            let candidate = if ends_here {
                word.clone()
            } else {
                format!("{word} ")
            };
            if !out.contains(&candidate) {
                out.push(candidate);
            }
        }
        (start, out)
    }
}

impl rustyline::completion::Completer for CommandCompleter {
    type Candidate = String;
    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        Ok(self.complete_at(line, pos))
    }
}
impl rustyline::hint::Hinter for CommandCompleter {
    type Hint = String;
}
impl rustyline::highlight::Highlighter for CommandCompleter {}
impl rustyline::validate::Validator for CommandCompleter {}
impl rustyline::Helper for CommandCompleter {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_is_multi_word() {
        let c = CommandCompleter::new(&[
            "show calls",
            "show channels",
            "show registrations",
            "status",
            "reload",
        ]);
        assert_eq!(
            c.complete_at("", 0),
            (
                0,
                vec![
                    "exit".into(),
                    "quit".into(),
                    "reload".into(),
                    "show ".into(),
                    "status".into()
                ]
            )
        );
        assert_eq!(
            c.complete_at("s", 1),
            (0, vec!["show ".into(), "status".into()])
        );
        assert_eq!(
            c.complete_at("show c", 6),
            (5, vec!["calls".into(), "channels".into()])
        );
        assert_eq!(c.complete_at("show  ch", 8), (6, vec!["channels".into()]));
        assert_eq!(
            c.complete_at("show r", 6),
            (5, vec!["registrations".into()])
        );
        assert_eq!(c.complete_at("show x", 6), (5, vec![]));
        assert_eq!(c.complete_at("status x", 8), (7, vec![]));
        assert_eq!(c.complete_at("bogus c", 7), (6, vec![]));
        // Cursor in the middle: only the text before it counts.
        assert_eq!(c.complete_at("sh calls", 2), (0, vec!["show ".into()]));
    }

    #[test]
    fn completion_word_that_is_also_a_command_gets_no_space() {
        let c = CommandCompleter::new(&["show", "show calls"]);
        assert_eq!(c.complete_at("sh", 2), (0, vec!["show".into()]));
        assert_eq!(c.complete_at("show ", 5), (5, vec!["calls".into()]));
    }

    #[test]
    fn reply_framing_round_trips() {
        for reply in [
            Ok(String::new()),
            Ok("a\nb\n".to_owned()),
            Err("nope".to_owned()),
            Ok("日本".to_owned()),
        ] {
            let mut wire = Vec::new();
            write_reply(&mut wire, &reply).unwrap();
            let mut r = io::Cursor::new(wire);
            assert_eq!(read_reply(&mut r).unwrap(), reply);
        }
        assert!(matches!(
            read_reply(&mut io::Cursor::new(b"HELLO\n".to_vec())),
            Err(Error::Protocol(_))
        ));
        assert!(matches!(
            read_reply(&mut io::Cursor::new(b"+OK x\n".to_vec())),
            Err(Error::Protocol(_))
        ));
        assert!(matches!(
            read_reply(&mut io::Cursor::new(b"+OK 10\nshort".to_vec())),
            Err(Error::Io(_))
        ));
    }
}
