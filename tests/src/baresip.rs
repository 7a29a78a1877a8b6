//! baresip 1.0 driven headless: a generated config dir, an aufile tone as microphone, the
//! sndfile module recording what it hears, and the ctrl_tcp socket (netstring-framed JSON)
//! for commands and events.

use crate::tail;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct BaresipConfig {
    /// User id and password (`pass<user>` in the basic conf).
    pub user: String,
    pub password: String,
    /// The daemon's SIP port on 127.0.0.1 (registrar and outbound proxy).
    pub daemon_port: u16,
    /// baresip's SIP port (it also binds TLS on +1); ctrl_tcp = +5; RTP = +10..+19.
    pub base_port: u16,
    /// Frequency of the tone it sends (a generated WAV longer than any test).
    pub tone_hz: f64,
    /// Answer incoming calls automatically.
    pub auto_answer: bool,
    /// The account's `audio_codecs` (e.g. "pcmu,pcma", "opus", "pcma").
    pub codecs: String,
    /// What it sends instead of the tone (S16LE mono at 8 kHz), e.g. DTMF tones.
    pub source: Option<PathBuf>,
}

impl BaresipConfig {
    /// A user of the basic conf (password `pass<user>`) sending a tone, offering PCMU and PCMA.
    pub fn new(
        user: &str,
        daemon_port: u16,
        base_port: u16,
        tone_hz: f64,
        auto_answer: bool,
    ) -> BaresipConfig {
        BaresipConfig {
            user: user.into(),
            password: format!("pass{user}"),
            daemon_port,
            base_port,
            tone_hz,
            auto_answer,
            codecs: "pcmu,pcma".into(),
            source: None,
        }
    }

    pub fn codecs(mut self, codecs: &str) -> BaresipConfig {
        self.codecs = codecs.into();
        self
    }

    pub fn source(mut self, wav: &Path) -> BaresipConfig {
        self.source = Some(wav.to_path_buf());
        self
    }
}

pub struct Baresip {
    pub cfg: BaresipConfig,
    child: Option<Child>,
    dir: tempfile::TempDir,
    ctrl: TcpStream,
    events: Receiver<Value>,
    seen: Vec<Value>,
}

impl Baresip {
    pub fn start(cfg: BaresipConfig) -> Baresip {
        let dir = tempfile::Builder::new()
            .prefix("sy-baresip-")
            .tempdir()
            .expect("tempdir");
        let d = dir.path();
        let tone = match &cfg.source {
            Some(source) => source.clone(),
            None => {
                let tone = d.join("tone.wav");
                // baresip hangs up when the aufile ends: make it longer than any test.
                crate::write_tone_wav(&tone, cfg.tone_hz, 60.0, 8000);
                tone
            }
        };
        let rec = d.join("rec");
        std::fs::create_dir_all(&rec).expect("mkdir rec");
        let sip = cfg.base_port;
        let ctrl_port = sip + 5;
        let (rtp_lo, rtp_hi) = (sip + 10, sip + 19);
        let config = format!(
            "poll_method\t\tepoll\n\
             sip_listen\t\t127.0.0.1:{sip}\n\
             net_interface\t\t127.0.0.1\n\
             audio_player\t\talsa,null\n\
             audio_alert\t\talsa,null\n\
             audio_source\t\taufile,{tone}\n\
             ausrc_srate\t\t8000\n\
             ausrc_channels\t\t1\n\
             auplay_srate\t\t8000\n\
             auplay_channels\t\t1\n\
             rtp_ports\t\t{rtp_lo}-{rtp_hi}\n\
             rtp_timeout\t\t0\n\
             module_path\t\t/usr/lib/baresip/modules\n\
             module\t\t\tg711.so\n\
             module\t\t\topus.so\n\
             module\t\t\taufile.so\n\
             module\t\t\talsa.so\n\
             module\t\t\tsndfile.so\n\
             module_app\t\taccount.so\n\
             module_app\t\tmenu.so\n\
             module_app\t\tctrl_tcp.so\n\
             ctrl_tcp_listen\t\t127.0.0.1:{ctrl_port}\n\
             snd_path\t\t{rec}\n",
            tone = tone.display(),
            rec = rec.display(),
        );
        std::fs::write(d.join("config"), config).expect("write config");
        let answer = if cfg.auto_answer { "auto" } else { "manual" };
        let account = format!(
            "<sip:{u}@127.0.0.1:{p}>;auth_pass={pw};regint=300;answermode={answer};audio_codecs={codecs}\n",
            u = cfg.user,
            p = cfg.daemon_port,
            pw = cfg.password,
            codecs = cfg.codecs,
        );
        std::fs::write(d.join("accounts"), account).expect("write accounts");
        std::fs::write(d.join("contacts"), "").expect("write contacts");
        let log = std::fs::File::create(d.join("baresip.log")).expect("log");
        let child = Command::new("baresip")
            .arg("-f")
            .arg(d)
            .current_dir(d)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("clone")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn baresip (is it installed?)");
        let mut child = Some(child);
        let log_path = d.join("baresip.log");
        let ctrl = crate::poll_until(Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", ctrl_port)).ok()
        });
        let Some(ctrl) = ctrl else {
            if let Some(mut c) = child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
            panic!(
                "baresip ctrl_tcp on {ctrl_port} never came up\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        };
        let (tx, rx) = mpsc::channel();
        let mut reader = ctrl.try_clone().expect("clone ctrl");
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                match reader.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
                // Netstrings: LEN ":" DATA ","
                while let Some(colon) = buf.iter().position(|&b| b == b':') {
                    let Ok(len) = std::str::from_utf8(&buf[..colon])
                        .unwrap_or("x")
                        .parse::<usize>()
                    else {
                        buf.clear();
                        break;
                    };
                    if buf.len() < colon + 1 + len + 1 {
                        break;
                    }
                    let data = buf[colon + 1..colon + 1 + len].to_vec();
                    buf.drain(..colon + 1 + len + 1);
                    if let Ok(v) = serde_json::from_slice::<Value>(&data)
                        && tx.send(v).is_err()
                    {
                        return;
                    }
                }
            }
        });
        Baresip {
            cfg,
            child,
            dir,
            ctrl,
            events: rx,
            seen: Vec::new(),
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// baresip's own log (stdout+stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("baresip.log")).unwrap_or_default()
    }

    /// Sends a ctrl_tcp command.
    pub fn command(&mut self, command: &str, params: &str) {
        let body = json!({"command": command, "params": params, "token": command}).to_string();
        let frame = format!("{}:{},", body.len(), body);
        self.ctrl
            .write_all(frame.as_bytes())
            .expect("write ctrl_tcp");
    }

    /// Waits for an event of type `ty` (e.g. REGISTER_OK, CALL_ESTABLISHED, CALL_CLOSED),
    /// returning it; events seen before are searched first (and consumed).
    pub fn wait_event(&mut self, ty: &str, timeout: Duration) -> Value {
        if let Some(i) = self.seen.iter().position(|e| e["type"] == ty) {
            return self.seen.remove(i);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(ev) if ev["type"] == ty => return ev,
                Ok(ev) => self.seen.push(ev),
                Err(_) => panic!(
                    "baresip {}: no {ty} event within {timeout:?}; events: {:?}\n--- baresip log ---\n{}",
                    self.cfg.user,
                    self.seen
                        .iter()
                        .map(|e| e["type"].to_string())
                        .collect::<Vec<_>>(),
                    tail(&self.log(), 40)
                ),
            }
        }
    }

    /// Drains pending events and reports whether one of type `ty` arrived.
    pub fn has_event(&mut self, ty: &str) -> bool {
        while let Ok(ev) = self.events.try_recv() {
            self.seen.push(ev);
        }
        self.seen.iter().any(|e| e["type"] == ty)
    }

    pub fn dial(&mut self, uri: &str) {
        self.command("dial", uri);
    }

    pub fn hangup(&mut self) {
        self.command("hangup", "");
    }

    /// All `dump-*-dec.wav` recordings (what it heard), one per call.
    pub fn heard_wavs(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.dir.path().join("rec"))
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.to_string_lossy().ends_with("-dec.wav"))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until a recording not in `before` holds at least `secs` seconds of 8 kHz
    /// 16-bit audio, and returns it.
    pub fn wait_new_recording(&self, before: &[PathBuf], secs: u64, timeout: Duration) -> PathBuf {
        crate::wait_until(
            timeout,
            &format!("{secs} s of audio recorded by baresip {}", self.cfg.user),
            || {
                self.heard_wavs().into_iter().find(|p| {
                    !before.contains(p)
                        && p.metadata()
                            .map(|m| m.len() >= 44 + secs * 16000)
                            .unwrap_or(false)
                })
            },
            || tail(&self.log(), 40),
        )
    }

    /// The most recent `dump-*-dec.wav` (what it heard), if any.
    pub fn heard_wav(&self) -> Option<PathBuf> {
        newest(&self.dir.path().join("rec"), "-dec.wav")
    }
}

fn newest(dir: &Path, suffix: &str) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(suffix))
        })
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
}

impl Drop for Baresip {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- baresip {} log (tail) ---\n{}",
                self.cfg.user,
                tail(&self.log(), 40)
            );
        }
    }
}
