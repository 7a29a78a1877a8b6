//! The switch on a virtual clock: phones are byte strings, time is an `Instant` we move by
//! hand, so forking races, the no-answer timer and brute-force blocking are tested in
//! microseconds. Media and the store are the real threads (loopback ports, a temp database):
//! the switch only calls them, it never waits on them.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use switchyard_config::Config;
use switchyard_media::{MediaConfig, MediaEngine};
use switchyard_sdp::SessionDescription;
use switchyard_sip::auth::authorization_for;
use switchyard_sip::transaction::{Peer, TransportKind};
use switchyard_sip::{Message, Method};
use switchyard_store::{Cdr, Store, StoreThread};

use crate::registrar::Registrar;
use crate::switch::{LocalAddrs, Now, Switch, SwitchParts};

const SWITCH_ADDR: &str = "127.0.0.1:5060";

pub(crate) struct Harness {
    pub(crate) switch: Switch,
    pub(crate) now: Now,
    pub(crate) store: Store,
    store_thread: Option<StoreThread>,
    pub(crate) media: MediaEngine,
    _dir: tempfile::TempDir,
    cseq: u32,
}

/// A phone: where it sends from, its user and password.
#[derive(Clone, Copy)]
pub(crate) struct Phone {
    pub(crate) user: &'static str,
    pub(crate) addr: &'static str,
}

impl Phone {
    pub(crate) fn peer(&self) -> Peer {
        Peer {
            transport: TransportKind::Udp,
            addr: self.addr.parse().unwrap(),
        }
    }
    pub(crate) fn password(&self) -> String {
        format!("pass{}", self.user)
    }
}

pub(crate) const ALICE: Phone = Phone {
    user: "1000",
    addr: "127.0.0.1:7000",
};
pub(crate) const BOB_DESK: Phone = Phone {
    user: "1001",
    addr: "127.0.0.1:7001",
};
pub(crate) const BOB_MOBILE: Phone = Phone {
    user: "1001",
    addr: "127.0.0.1:7002",
};

pub(crate) fn conf_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/conf/basic")
}

impl Harness {
    /// `rtp_base`: each test its own media ports, so tests can run in parallel threads.
    pub(crate) fn new(rtp_base: u16, tweak: impl FnOnce(&mut Config)) -> Harness {
        Harness::with_plan_dir(rtp_base, &conf_dir().join("dialplan"), tweak)
    }

    /// As [`Harness::new`], serving the dialplan of `dialplan_dir` (which `reload dialplan`
    /// reads again): tests that rewrite the plan work on a copy.
    pub(crate) fn with_plan_dir(
        rtp_base: u16,
        dialplan_dir: &Path,
        tweak: impl FnOnce(&mut Config),
    ) -> Harness {
        let mut config =
            switchyard_config::load(&conf_dir()).expect("the test configuration loads");
        tweak(&mut config);
        let dir = tempfile::tempdir().unwrap();
        let (store, store_thread) = Store::open(&dir.path().join("switchyard.db")).unwrap();
        let media = MediaEngine::start(
            MediaConfig {
                ip: "127.0.0.1".parse().unwrap(),
                port_min: rtp_base,
                port_max: rtp_base + 39,
                rtp_timeout: Duration::from_secs(60),
                // One thread unless a test asks for more (`[media] threads` in its tweak).
                threads: config.media.threads.clamp(1, 4),
                realtime_priority: None,
            },
            Box::new(|_| {}),
        )
        .unwrap();
        let dialplan_dir = dialplan_dir.to_path_buf();
        // Checked like the daemon's, except that test plans may use module applications the
        // tests register themselves.
        let mut applications = switchyard_dialplan::check::CORE_APPLICATIONS.to_vec();
        applications.push("greet");
        let env = switchyard_dialplan::check::CheckEnv {
            applications: &applications,
            ..switchyard_dialplan::check::CheckEnv::core()
        };
        let (plan, _) = crate::switch::load_routing_plan(
            &dialplan_dir,
            None,
            switchyard_dialplan::LocalZone::utc(),
            &env,
        )
        .unwrap();
        let now = Now {
            mono: Instant::now(),
            unix_ms: 1_800_000_000_000,
        };
        let local: SocketAddr = SWITCH_ADDR.parse().unwrap();
        let switch = Switch::new(
            SwitchParts {
                config,
                plan,
                dialplan_dir,
                holidays: None,
                local: LocalAddrs {
                    udp: Some(local),
                    tcp: None,
                },
                media: media.clone(),
                store: store.clone(),
                registrar: Registrar::default(),
                nonce_secret: [7; 32],
                recorder: None,
                recordings_dir: dir.path().join("recordings"),
                modules: crate::modules::Modules::new(
                    crate::modules::EngineHost::new(None),
                    Vec::new(),
                    &conf_dir(),
                    Vec::new(),
                ),
            },
            now,
        );
        Harness {
            switch,
            now,
            store,
            store_thread: Some(store_thread),
            media,
            _dir: dir,
            cseq: 1,
        }
    }

    pub(crate) fn advance(&mut self, by: Duration) {
        self.now.mono += by;
        self.now.unix_ms += by.as_millis() as i64;
        self.switch.handle_timeout(self.now);
    }

    pub(crate) fn send(&mut self, from: Phone, text: String) {
        let message = Message::parse_datagram(Bytes::from(text.replace('\n', "\r\n")))
            .expect("test message parses");
        self.switch.handle_message(self.now, message, from.peer());
    }

    /// Everything the switch sent since the last call, as (destination, message).
    pub(crate) fn sent(&mut self) -> Vec<(SocketAddr, Message)> {
        let mut out = Vec::new();
        while let Some(transmit) = self.switch.poll_transmit() {
            out.push((
                transmit.peer.addr,
                Message::parse_datagram(transmit.bytes).unwrap(),
            ));
        }
        out
    }

    pub(crate) fn responses_to(&mut self, phone: Phone) -> Vec<Message> {
        let addr = phone.peer().addr;
        self.sent()
            .into_iter()
            .filter(|(to, m)| *to == addr && !m.is_request())
            .map(|(_, m)| m)
            .collect()
    }

    pub(crate) fn next_cseq(&mut self) -> u32 {
        self.cseq += 1;
        self.cseq
    }

    /// Registers `phone` through the 401 round; returns the Authorization value it used.
    pub(crate) fn register(&mut self, phone: Phone) -> String {
        let cseq = self.next_cseq();
        self.send(phone, register_request(phone, cseq, ""));
        let challenge = self.responses_to(phone).pop().expect("a challenge");
        assert_eq!(challenge.status(), Some(401));
        let authorization = authorization_for(
            challenge.header("WWW-Authenticate").unwrap(),
            "REGISTER",
            "sip:switchyard.test",
            phone.user,
            &phone.password(),
            "c0ffee",
            1,
        )
        .unwrap();
        let ok = self.register_with(phone, &authorization);
        assert_eq!(ok.status(), Some(200), "{ok:?}");
        authorization
    }

    pub(crate) fn register_with(&mut self, phone: Phone, authorization: &str) -> Message {
        let cseq = self.next_cseq();
        self.send(
            phone,
            register_request(phone, cseq, &format!("Authorization: {authorization}\n")),
        );
        self.responses_to(phone)
            .pop()
            .expect("an answer to the authenticated REGISTER")
    }

    /// Sends an authenticated INVITE from `phone` to `destination`; returns the Call-ID and
    /// everything the switch sent after the challenge round.
    pub(crate) fn call(
        &mut self,
        phone: Phone,
        destination: &str,
    ) -> (String, Vec<(SocketAddr, Message)>) {
        self.call_with(phone, destination, "")
    }

    /// As [`Harness::call`], with extra header lines (each ending in \n) in the INVITE.
    pub(crate) fn call_with(
        &mut self,
        phone: Phone,
        destination: &str,
        extra: &str,
    ) -> (String, Vec<(SocketAddr, Message)>) {
        let call_id = format!("call-{}-{}", phone.user, self.next_cseq());
        let sdp = "v=0\no=- 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 30000 RTP/AVP 0 101\na=rtpmap:0 PCMU/8000\na=rtpmap:101 telephone-event/8000\n";
        let invite = |cseq: u32, branch: &str, auth: &str| {
            format!(
                "INVITE sip:{destination}@switchyard.test SIP/2.0\nVia: SIP/2.0/UDP {addr};branch={branch};rport\n\
                 Max-Forwards: 70\nFrom: <sip:{user}@switchyard.test>;tag=a{user}\nTo: <sip:{destination}@switchyard.test>\n\
                 Call-ID: {call_id}\nCSeq: {cseq} INVITE\nContact: <sip:{user}@{addr}>\n{extra}{auth}Content-Type: application/sdp\n\
                 Content-Length: {len}\n\n{sdp}",
                addr = phone.addr,
                user = phone.user,
                len = sdp.replace('\n', "\r\n").len(),
            )
        };
        let (first_branch, second_branch) =
            (format!("z9hG4bK1{call_id}"), format!("z9hG4bK2{call_id}"));
        self.send(phone, invite(1, &first_branch, ""));
        let challenge = self.responses_to(phone).pop().expect("a challenge");
        assert_eq!(challenge.status(), Some(407));
        self.send(
            phone,
            format!(
                "ACK sip:{destination}@switchyard.test SIP/2.0\nVia: SIP/2.0/UDP {addr};branch={first_branch};rport\n\
                 Max-Forwards: 70\nFrom: <sip:{user}@switchyard.test>;tag=a{user}\nTo: {to}\nCall-ID: {call_id}\n\
                 CSeq: 1 ACK\nContent-Length: 0\n\n",
                addr = phone.addr,
                user = phone.user,
                to = challenge.header("To").unwrap(),
            ),
        );
        let authorization = authorization_for(
            challenge.header("Proxy-Authenticate").unwrap(),
            "INVITE",
            &format!("sip:{destination}@switchyard.test"),
            phone.user,
            &phone.password(),
            "c0ffee",
            1,
        )
        .unwrap();
        self.send(
            phone,
            invite(
                2,
                &second_branch,
                &format!("Proxy-Authorization: {authorization}\n"),
            ),
        );
        (call_id, self.sent())
    }

    /// A phone's answer to an INVITE the switch sent it.
    pub(crate) fn answer(&mut self, phone: Phone, invite: &Message, status: u16, to_tag: &str) {
        let sdp = "v=0\no=- 2 2 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 31000 RTP/AVP 0\na=rtpmap:0 PCMU/8000\n";
        self.answer_with_sdp(phone, invite, status, to_tag, sdp);
    }

    /// As [`Harness::answer`], with this SDP in a 200.
    pub(crate) fn answer_with_sdp(
        &mut self,
        phone: Phone,
        invite: &Message,
        status: u16,
        to_tag: &str,
        sdp: &str,
    ) {
        let mut text = format!("SIP/2.0 {status} Whatever\n");
        for via in invite.headers("Via") {
            text.push_str(&format!("Via: {via}\n"));
        }
        text.push_str(&format!(
            "From: {}\nTo: {};tag={to_tag}\nCall-ID: {}\nCSeq: {}\nContact: <sip:{}@{}>\n",
            invite.header("From").unwrap(),
            invite.header("To").unwrap(),
            invite.call_id(),
            invite.header("CSeq").unwrap(),
            phone.user,
            phone.addr
        ));
        if status == 200 {
            text.push_str(&format!(
                "Content-Type: application/sdp\nContent-Length: {}\n\n{sdp}",
                sdp.replace('\n', "\r\n").len()
            ));
        } else {
            text.push_str("Content-Length: 0\n\n");
        }
        self.send(phone, text);
    }

    /// Answers every request the switch still sends (BYE, CANCEL) with 200, lets every
    /// transaction timer run out, then checks that no table still holds anything.
    pub(crate) fn assert_nothing_left_after_bye_answers(&mut self, phones: &[Phone]) {
        for _ in 0..4 {
            for (to, message) in self.sent() {
                if let Some(phone) = phones.iter().find(|p| p.peer().addr == to)
                    && message.is_request()
                    && message.method() != Some(&Method::Ack)
                {
                    self.answer(*phone, &message, 200, "bye");
                }
            }
            self.advance(Duration::from_secs(40));
        }
        assert_eq!(
            self.switch.table_sizes(),
            [0; 7],
            "calls, dialogs, roles, peers, endpoints, transactions"
        );
        assert_eq!(
            self.media.active_endpoints(),
            0,
            "every media endpoint released"
        );
    }

    /// The 200 the switch just sent `phone` (the caller being answered).
    pub(crate) fn ok_to(&mut self, phone: Phone) -> Message {
        self.sent()
            .into_iter()
            .find(|(to, m)| *to == phone.peer().addr && m.status() == Some(200))
            .map(|(_, m)| m)
            .expect("the caller is answered")
    }

    /// The number of calls up, as `show calls` reports it.
    pub(crate) fn active_calls(&mut self) -> usize {
        let listing = self.switch.execute(self.now, "show calls").unwrap();
        let count = listing.split_whitespace().next().unwrap_or("");
        count.parse().expect("show calls starts with the count")
    }

    pub(crate) fn cdrs(&self) -> Vec<Cdr> {
        self.store.flush().unwrap();
        self.store.recent_cdrs(100).unwrap()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.store.shutdown();
        if let Some(thread) = self.store_thread.take() {
            thread.join();
        }
        self.media.clone().shutdown();
    }
}

pub(crate) fn register_request(phone: Phone, cseq: u32, auth: &str) -> String {
    format!(
        "REGISTER sip:switchyard.test SIP/2.0\nVia: SIP/2.0/UDP {addr};branch=z9hG4bKreg{cseq}{port};rport\n\
         Max-Forwards: 70\nFrom: <sip:{user}@switchyard.test>;tag=r{user}\nTo: <sip:{user}@switchyard.test>\n\
         Call-ID: reg-{user}@{addr}\nCSeq: {cseq} REGISTER\nContact: <sip:{user}@{addr}>\nExpires: 600\n{auth}Content-Length: 0\n\n",
        addr = phone.addr,
        user = phone.user,
        port = phone.peer().addr.port(),
    )
}

pub(crate) fn requests_to(
    sent: &[(SocketAddr, Message)],
    phone: Phone,
    method: Method,
) -> Vec<Message> {
    let addr = phone.peer().addr;
    sent.iter()
        .filter(|(to, m)| *to == addr && m.method() == Some(&method))
        .map(|(_, m)| m.clone())
        .collect()
}

pub(crate) fn statuses_to(sent: &[(SocketAddr, Message)], phone: Phone) -> Vec<u16> {
    let addr = phone.peer().addr;
    sent.iter()
        .filter(|(to, _)| *to == addr)
        .filter_map(|(_, m)| m.status())
        .collect()
}

#[test]
fn a_call_forks_to_every_contact_and_the_first_answer_wins() {
    let mut h = Harness::new(40000, |_| {});
    h.register(ALICE);
    h.register(BOB_DESK);
    h.register(BOB_MOBILE);
    let (_, sent) = h.call(ALICE, "1001");
    assert_eq!(statuses_to(&sent, ALICE), vec![100]);
    let desk_invite = requests_to(&sent, BOB_DESK, Method::Invite)
        .pop()
        .expect("the desk phone rings");
    let mobile_invite = requests_to(&sent, BOB_MOBILE, Method::Invite)
        .pop()
        .expect("the mobile rings");
    assert_ne!(
        desk_invite.call_id(),
        mobile_invite.call_id(),
        "each fork is its own dialog"
    );
    // The offer to the callee is anchored on our relay, not the caller's address.
    let offer = String::from_utf8_lossy(desk_invite.body()).into_owned();
    assert!(
        !offer.contains("30000"),
        "caller's media port leaked into the B leg: {offer}"
    );

    h.answer(BOB_DESK, &desk_invite, 180, "desk");
    let sent = h.sent();
    assert_eq!(
        statuses_to(&sent, ALICE),
        vec![180],
        "ringing reaches the caller"
    );

    h.answer(BOB_MOBILE, &mobile_invite, 200, "mobile");
    let sent = h.sent();
    assert_eq!(statuses_to(&sent, ALICE), vec![200]);
    assert_eq!(
        requests_to(&sent, BOB_MOBILE, Method::Ack).len(),
        1,
        "the winner is ACKed"
    );
    let cancel = requests_to(&sent, BOB_DESK, Method::Cancel)
        .pop()
        .expect("the desk phone is cancelled");
    assert_eq!(cancel.cseq().0, desk_invite.cseq().0);
    assert_eq!(
        cancel.top_via().branch(),
        desk_invite.top_via().branch(),
        "RFC 3261 §9.1: same branch"
    );
    assert_eq!(h.active_calls(), 1);
}

/// The callee is offered what we can transcode after the caller's own codecs; answering with
/// one of ours makes the switch answer the caller in the caller's codec and transcode, and
/// answering with the caller's keeps the call a relay with the callee's SDP.
#[test]
fn a_callee_choosing_a_codec_the_caller_lacks_is_transcoded() {
    for (answer_codec, transcoded) in [("8 PCMA", true), ("0 PCMU", false)] {
        let mut h = Harness::new(40000, |_| {});
        h.register(ALICE);
        h.register(BOB_DESK);
        let (_, sent) = h.call(ALICE, "1001");
        let invite = requests_to(&sent, BOB_DESK, Method::Invite).pop().unwrap();
        let offer = SessionDescription::parse(invite.body()).unwrap();
        let offered: Vec<String> = offer
            .active_audio()
            .unwrap()
            .codecs()
            .iter()
            .map(|c| c.name.clone())
            .collect();
        assert_eq!(
            offered,
            [
                "PCMU",
                "telephone-event",
                "PCMA",
                "G722",
                "opus",
                "telephone-event"
            ],
            "the caller's codecs first, then what we transcode to"
        );
        let (pt, name) = answer_codec.split_once(' ').unwrap();
        let sdp = format!(
            "v=0\no=- 2 2 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 31000 RTP/AVP {pt}\na=rtpmap:{pt} {name}/8000\n"
        );
        h.answer_with_sdp(BOB_DESK, &invite, 200, "desk", &sdp);
        let ok = h.ok_to(ALICE);
        let answer = SessionDescription::parse(ok.body()).unwrap();
        assert_eq!(
            answer.chosen_codec().unwrap().name,
            "PCMU",
            "the caller always hears a codec it offered"
        );
        assert_eq!(
            answer.telephone_event(8000).is_some(),
            transcoded,
            "our own answer keeps the caller's telephone-event; a relayed one is the callee's"
        );
        let bye = caller_request(&ok, "BYE", 3);
        h.send(ALICE, bye);
        let cdrs = h.cdrs();
        assert_eq!(cdrs.len(), 1);
        assert_eq!(cdrs[0].transcoded, transcoded, "{answer_codec}");
    }
}

/// RFC 3264 §6: the caller's answer lists only formats it offered, even when the callee's
/// answer also names codecs we added to its offer.
#[test]
fn the_callers_answer_holds_only_what_the_caller_offered() {
    let mut h = Harness::new(40000, |_| {});
    h.register(ALICE);
    h.register(BOB_DESK);
    let (_, sent) = h.call(ALICE, "1001");
    let invite = requests_to(&sent, BOB_DESK, Method::Invite).pop().unwrap();
    let sdp = "v=0\no=- 2 2 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 31000 RTP/AVP 0 8\na=rtpmap:0 PCMU/8000\na=rtpmap:8 PCMA/8000\n";
    h.answer_with_sdp(BOB_DESK, &invite, 200, "desk", sdp);
    let ok = h.ok_to(ALICE);
    let answer = SessionDescription::parse(ok.body()).unwrap();
    assert_eq!(answer.active_audio().unwrap().formats, ["0"]);
    let offer = SessionDescription::parse(
        b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n",
    )
    .unwrap();
    switchyard_sdp::check_answer(&offer, &answer).expect("a valid RFC 3264 answer");
}

#[test]
fn a_second_answer_racing_the_first_is_acked_and_hung_up() {
    let mut h = Harness::new(40040, |_| {});
    h.register(ALICE);
    h.register(BOB_DESK);
    h.register(BOB_MOBILE);
    let (_, sent) = h.call(ALICE, "1001");
    let desk_invite = requests_to(&sent, BOB_DESK, Method::Invite).pop().unwrap();
    let mobile_invite = requests_to(&sent, BOB_MOBILE, Method::Invite)
        .pop()
        .unwrap();
    h.answer(BOB_DESK, &desk_invite, 200, "desk");
    h.answer(BOB_MOBILE, &mobile_invite, 200, "mobile");
    let sent = h.sent();
    assert_eq!(requests_to(&sent, BOB_MOBILE, Method::Ack).len(), 1);
    let bye = requests_to(&sent, BOB_MOBILE, Method::Bye)
        .pop()
        .expect("the late answer is hung up");
    assert_eq!(bye.to().tag(), Some("mobile"));
    assert!(
        requests_to(&sent, BOB_DESK, Method::Bye).is_empty(),
        "the winner keeps talking"
    );
}

#[test]
fn an_unanswered_call_times_out_cancels_the_callee_and_leaves_a_cdr() {
    let mut h = Harness::new(40080, |config| config.calls.no_answer_timeout_secs = 20);
    h.register(ALICE);
    h.register(BOB_DESK);
    let (call_id, sent) = h.call(ALICE, "1001");
    let invite = requests_to(&sent, BOB_DESK, Method::Invite).pop().unwrap();
    h.answer(BOB_DESK, &invite, 180, "desk");
    h.sent();
    h.advance(Duration::from_secs(19));
    assert!(
        statuses_to(&h.sent(), ALICE).is_empty(),
        "still ringing at 19 s"
    );
    h.advance(Duration::from_secs(1));
    let sent = h.sent();
    assert_eq!(statuses_to(&sent, ALICE), vec![480]);
    assert_eq!(requests_to(&sent, BOB_DESK, Method::Cancel).len(), 1);
    let cdrs = h.cdrs();
    assert_eq!(cdrs.len(), 1);
    assert_eq!(cdrs[0].hangup_cause, "NO_ANSWER");
    assert_eq!(cdrs[0].a_call_id, call_id);
    assert_eq!(cdrs[0].a_sip_code, Some(480));
    assert_eq!(cdrs[0].duration_s, 20);
    assert_eq!(cdrs[0].answer_ms, None);
}

#[test]
fn busy_and_unavailable_forks_give_the_caller_busy() {
    let mut h = Harness::new(40120, |_| {});
    h.register(ALICE);
    h.register(BOB_DESK);
    h.register(BOB_MOBILE);
    let (_, sent) = h.call(ALICE, "1001");
    let desk_invite = requests_to(&sent, BOB_DESK, Method::Invite).pop().unwrap();
    let mobile_invite = requests_to(&sent, BOB_MOBILE, Method::Invite)
        .pop()
        .unwrap();
    h.answer(BOB_DESK, &desk_invite, 480, "desk");
    assert!(
        statuses_to(&h.sent(), ALICE).is_empty(),
        "one fork failing is not the end"
    );
    h.answer(BOB_MOBILE, &mobile_invite, 486, "mobile");
    assert_eq!(statuses_to(&h.sent(), ALICE), vec![486]);
    assert_eq!(h.cdrs()[0].hangup_cause, "USER_BUSY");
}

#[test]
fn a_source_failing_authentication_is_blocked_then_forgiven() {
    let mut h = Harness::new(40160, |config| {
        config.auth.max_failures = 3;
        config.auth.block_secs = 60;
    });
    // Blocking is per IP address: the intruder must not share the phones' address.
    let intruder = Phone {
        user: "1000",
        addr: "127.0.0.2:7100",
    };
    let attempt = |h: &mut Harness, cseq: u32| {
        h.send(
            intruder,
            format!(
                "REGISTER sip:switchyard.test SIP/2.0\nVia: SIP/2.0/UDP {addr};branch=z9hG4bKbad{cseq}\n\
                 Max-Forwards: 70\nFrom: <sip:1000@switchyard.test>;tag=x\nTo: <sip:1000@switchyard.test>\n\
                 Call-ID: brute@x\nCSeq: {cseq} REGISTER\nContact: <sip:1000@{addr}>\n\
                 Authorization: Digest username=\"1000\", realm=\"switchyard.test\", nonce=\"00\", uri=\"sip:switchyard.test\", response=\"00\"\n\
                 Content-Length: 0\n\n",
                addr = intruder.addr
            ),
        );
        h.responses_to(intruder)
    };
    for cseq in 1..=3 {
        let answers = attempt(&mut h, cseq);
        assert_eq!(answers.len(), 1, "attempt {cseq} is answered");
        assert_eq!(answers[0].status(), Some(403));
    }
    assert!(
        attempt(&mut h, 4).is_empty(),
        "blocked sources get no answer"
    );
    assert!(
        h.switch
            .execute(h.now, "status")
            .unwrap()
            .contains("1 sources blocked")
    );
    // Another address is not affected.
    h.register(ALICE);
    h.advance(Duration::from_secs(61));
    assert_eq!(attempt(&mut h, 5).len(), 1, "the block lapses");
}

#[test]
fn shutdown_refuses_new_calls_and_stops_when_the_last_call_ends() {
    let mut h = Harness::new(40200, |_| {});
    h.register(ALICE);
    h.register(BOB_DESK);
    let (_, sent) = h.call(ALICE, "1001");
    let invite = requests_to(&sent, BOB_DESK, Method::Invite).pop().unwrap();
    h.answer(BOB_DESK, &invite, 200, "desk");
    let ok = h.responses_to(ALICE).pop().unwrap();
    h.send(ALICE, caller_request(&ok, "ACK", 2));
    h.switch.execute(h.now, "shutdown").unwrap();
    assert!(!h.switch.is_stopped(), "a call is still up");
    h.send(
        BOB_DESK,
        "INVITE sip:1000@switchyard.test SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:7001;branch=z9hG4bKlate\n\
         Max-Forwards: 70\nFrom: <sip:1001@switchyard.test>;tag=late\nTo: <sip:1000@switchyard.test>\n\
         Call-ID: late@x\nCSeq: 1 INVITE\nContact: <sip:1001@127.0.0.1:7001>\nContent-Length: 0\n\n"
            .to_owned(),
    );
    assert_eq!(
        statuses_to(&h.sent(), BOB_DESK),
        vec![503],
        "new calls are refused"
    );
    h.switch.execute(h.now, "hupall").unwrap();
    let sent = h.sent();
    assert_eq!(requests_to(&sent, ALICE, Method::Bye).len(), 1);
    assert_eq!(requests_to(&sent, BOB_DESK, Method::Bye).len(), 1);
    assert!(h.switch.is_stopped());
    h.assert_nothing_left_after_bye_answers(&[ALICE, BOB_DESK]);
}

#[test]
fn nothing_is_left_behind_after_calls_end_every_way() {
    let mut h = Harness::new(40240, |config| config.calls.no_answer_timeout_secs = 5);
    h.register(ALICE);
    h.register(BOB_DESK);
    h.register(BOB_MOBILE);
    // Answered on one fork, the other cancelled, then the caller hangs up.
    let (call_id, sent) = h.call(ALICE, "1001");
    let desk_invite = requests_to(&sent, BOB_DESK, Method::Invite).pop().unwrap();
    let mobile_invite = requests_to(&sent, BOB_MOBILE, Method::Invite)
        .pop()
        .unwrap();
    h.answer(BOB_MOBILE, &mobile_invite, 180, "mobile");
    h.answer(BOB_DESK, &desk_invite, 200, "desk");
    let sent = h.sent();
    let ok = sent
        .iter()
        .find(|(_, m)| m.status() == Some(200) && m.call_id() == call_id)
        .unwrap()
        .1
        .clone();
    let cancel = requests_to(&sent, BOB_MOBILE, Method::Cancel)
        .pop()
        .unwrap();
    h.answer(BOB_MOBILE, &cancel, 200, "mobile");
    h.answer(BOB_MOBILE, &mobile_invite, 487, "mobile");
    h.send(ALICE, caller_request(&ok, "ACK", 2));
    h.send(ALICE, caller_request(&ok, "BYE", 3));
    let sent = h.sent();
    assert_eq!(statuses_to(&sent, ALICE), vec![200], "the BYE is answered");
    assert_eq!(
        requests_to(&sent, BOB_DESK, Method::Bye).len(),
        1,
        "and passed on"
    );
    // Unanswered and timed out.
    let (_, sent) = h.call(ALICE, "1001");
    for phone in [BOB_DESK, BOB_MOBILE] {
        let invite = requests_to(&sent, phone, Method::Invite).pop().unwrap();
        h.answer(phone, &invite, 180, "late");
    }
    h.advance(Duration::from_secs(5));
    assert_eq!(h.cdrs().len(), 2);
    h.assert_nothing_left_after_bye_answers(&[ALICE, BOB_DESK, BOB_MOBILE]);
}

#[test]
fn a_hold_reinvite_is_relayed_with_anchored_sdp_and_its_ack_stops_retransmissions() {
    let mut h = Harness::new(40280, |_| {});
    h.register(ALICE);
    h.register(BOB_DESK);
    let (call_id, sent) = h.call(ALICE, "1001");
    let invite = requests_to(&sent, BOB_DESK, Method::Invite).pop().unwrap();
    h.answer(BOB_DESK, &invite, 200, "desk");
    let ok = h
        .sent()
        .into_iter()
        .find(|(_, m)| m.status() == Some(200))
        .unwrap()
        .1;
    let to = ok.header("To").unwrap().to_owned();
    let in_dialog = |method: &str, cseq: u32, body: &str| {
        // `send` turns every \n into \r\n: count the body as it will be sent.
        format!(
            "{method} sip:switchyard@127.0.0.1:5060 SIP/2.0\nVia: SIP/2.0/UDP {addr};branch=z9hG4bKre{method}{cseq}\n\
             Max-Forwards: 70\nFrom: <sip:1000@switchyard.test>;tag=a1000\nTo: {to}\nCall-ID: {call_id}\n\
             CSeq: {cseq} {method}\nContact: <sip:1000@{addr}>\nContent-Type: application/sdp\nContent-Length: {len}\n\n{body}",
            addr = ALICE.addr,
            len = body.replace('\n', "\r\n").len(),
        )
    };
    h.send(ALICE, in_dialog("ACK", 2, ""));
    h.sent();
    let hold = "v=0\no=- 1 2 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 30000 RTP/AVP 0\na=sendonly\n";
    h.send(ALICE, in_dialog("INVITE", 3, hold));
    let sent = h.sent();
    assert_eq!(statuses_to(&sent, ALICE), vec![100]);
    let reinvite = requests_to(&sent, BOB_DESK, Method::Invite)
        .pop()
        .expect("the re-INVITE reaches the callee");
    let offer = String::from_utf8_lossy(reinvite.body()).into_owned();
    assert!(offer.contains("a=sendonly"), "{offer}");
    assert!(
        !offer.contains("30000"),
        "the caller's port stays hidden: {offer}"
    );
    assert_eq!(reinvite.to().tag(), Some("desk"));
    h.answer(BOB_DESK, &reinvite, 200, "desk");
    let sent = h.sent();
    assert_eq!(
        requests_to(&sent, BOB_DESK, Method::Ack).len(),
        1,
        "the callee's 200 is ACKed"
    );
    assert_eq!(
        statuses_to(&sent, ALICE),
        vec![200],
        "the caller gets the answer"
    );
    h.send(ALICE, in_dialog("ACK", 3, ""));
    h.advance(Duration::from_secs(2));
    assert!(
        statuses_to(&h.sent(), ALICE).is_empty(),
        "no 200 retransmission after the ACK"
    );
}

#[test]
fn an_expired_nonce_is_stale_and_an_expired_binding_is_unreachable() {
    let mut h = Harness::new(40320, |config| config.auth.nonce_ttl_secs = 30);
    h.register(ALICE);
    let old_authorization = h.register(BOB_DESK);
    h.advance(Duration::from_secs(31));
    let stale = h.register_with(BOB_DESK, &old_authorization);
    assert_eq!(
        stale.status(),
        Some(401),
        "the right password with an old nonce is challenged again"
    );
    assert!(
        stale
            .headers("WWW-Authenticate")
            .all(|c| c.contains("stale=true")),
        "RFC 2617 §3.2.1: stale=true tells the phone it need not ask the user: {stale:?}"
    );
    let status = h.switch.execute(h.now, "status").unwrap();
    assert!(
        status.contains("auth: 0 failures"),
        "a stale nonce is no failure: {status}"
    );
    h.register(BOB_DESK);
    // The REGISTERs asked for 600 s; past that the phone is gone.
    h.advance(Duration::from_secs(601));
    let listing = h.switch.execute(h.now, "show registrations").unwrap();
    assert!(listing.starts_with("0 registrations"), "{listing}");
    h.register(ALICE);
    let (_, sent) = h.call(ALICE, "1001");
    assert_eq!(statuses_to(&sent, ALICE), vec![100, 480]);
    assert_eq!(h.cdrs()[0].hangup_cause, "USER_NOT_REGISTERED");
}

/// A callee hanging up the dialog our INVITE created (its To tag was `tag`).
pub(crate) fn callee_bye(phone: Phone, invite: &Message, tag: &str) -> String {
    format!(
        "BYE sip:switchyard@127.0.0.1:5060 SIP/2.0\nVia: SIP/2.0/UDP {addr};branch=z9hG4bKbye{tag}\n\
         Max-Forwards: 70\nFrom: {to};tag={tag}\nTo: {from}\nCall-ID: {call_id}\nCSeq: 5 BYE\nContent-Length: 0\n\n",
        addr = phone.addr,
        to = invite.header("To").unwrap(),
        from = invite.header("From").unwrap(),
        call_id = invite.call_id(),
    )
}

/// The caller's side of an answered call: its in-dialog requests, built from our 200 OK.
pub(crate) fn caller_request(ok: &Message, method: &str, cseq: u32) -> String {
    format!(
        "{method} sip:switchyard@127.0.0.1:5060 SIP/2.0\nVia: SIP/2.0/UDP {addr};branch=z9hG4bKc{method}{cseq}\n\
         Max-Forwards: 70\nFrom: <sip:1000@switchyard.test>;tag=a1000\nTo: {to}\nCall-ID: {call_id}\n\
         CSeq: {cseq} {method}\nContent-Length: 0\n\n",
        addr = ALICE.addr,
        to = ok.header("To").unwrap(),
        call_id = ok.call_id(),
    )
}

#[test]
fn a_caller_cancel_reaches_a_callee_that_only_sent_trying_or_nothing_yet() {
    let mut h = Harness::new(40360, |_| {});
    h.register(ALICE);
    h.register(BOB_DESK);
    h.register(BOB_MOBILE);
    let (call_id, sent) = h.call(ALICE, "1001");
    let desk_invite = requests_to(&sent, BOB_DESK, Method::Invite).pop().unwrap();
    let mobile_invite = requests_to(&sent, BOB_MOBILE, Method::Invite)
        .pop()
        .unwrap();
    h.answer(BOB_DESK, &desk_invite, 100, "desk");
    h.sent();
    // The caller gives up: the desk phone (100 only) is cancelled at once; the mobile (silent)
    // must wait for a provisional response before it may be cancelled (RFC 3261 §9.1).
    h.send(
        ALICE,
        format!(
            "CANCEL sip:1001@switchyard.test SIP/2.0\nVia: SIP/2.0/UDP {addr};branch=z9hG4bK2{call_id};rport\n\
             Max-Forwards: 70\nFrom: <sip:1000@switchyard.test>;tag=a1000\nTo: <sip:1001@switchyard.test>\n\
             Call-ID: {call_id}\nCSeq: 2 CANCEL\nContent-Length: 0\n\n",
            addr = ALICE.addr
        ),
    );
    let sent = h.sent();
    let mut to_alice = statuses_to(&sent, ALICE);
    to_alice.sort();
    assert_eq!(
        to_alice,
        vec![200, 487],
        "CANCEL answered, INVITE terminated"
    );
    assert_eq!(
        requests_to(&sent, BOB_DESK, Method::Cancel).len(),
        1,
        "100 Trying is enough to cancel"
    );
    assert!(
        requests_to(&sent, BOB_MOBILE, Method::Cancel).is_empty(),
        "no CANCEL before a provisional"
    );
    h.answer(BOB_MOBILE, &mobile_invite, 180, "mobile");
    assert_eq!(
        requests_to(&h.sent(), BOB_MOBILE, Method::Cancel).len(),
        1,
        "the late ringer is cancelled"
    );
    h.answer(BOB_DESK, &desk_invite, 487, "desk");
    h.answer(BOB_MOBILE, &mobile_invite, 487, "mobile");
    assert_eq!(h.cdrs()[0].hangup_cause, "ORIGINATOR_CANCEL");
    h.assert_nothing_left_after_bye_answers(&[ALICE, BOB_DESK, BOB_MOBILE]);
}

#[test]
fn a_callee_answering_after_the_caller_gave_up_is_acked_and_hung_up_at_its_flow() {
    let mut h = Harness::new(40400, |config| config.calls.no_answer_timeout_secs = 5);
    h.register(ALICE);
    h.register(BOB_DESK);
    let (_, sent) = h.call(ALICE, "1001");
    let invite = requests_to(&sent, BOB_DESK, Method::Invite).pop().unwrap();
    h.answer(BOB_DESK, &invite, 180, "desk");
    h.advance(Duration::from_secs(5));
    assert_eq!(requests_to(&h.sent(), BOB_DESK, Method::Cancel).len(), 1);
    // The 200 crosses our CANCEL.
    h.answer(BOB_DESK, &invite, 200, "desk");
    let sent = h.sent();
    assert_eq!(requests_to(&sent, BOB_DESK, Method::Ack).len(), 1);
    assert_eq!(requests_to(&sent, BOB_DESK, Method::Bye).len(), 1);
    h.assert_nothing_left_after_bye_answers(&[ALICE, BOB_DESK]);
}

#[test]
fn answers_to_the_caller_carry_its_record_route_set() {
    let mut h = Harness::new(40440, |_| {});
    h.register(ALICE);
    h.register(BOB_DESK);
    let (_, sent) = h.call_with(
        ALICE,
        "1001",
        "Record-Route: <sip:sbc.example.com;lr>\nRecord-Route: <sip:edge.example.com;lr>\n",
    );
    let invite = requests_to(&sent, BOB_DESK, Method::Invite).pop().unwrap();
    h.answer(BOB_DESK, &invite, 180, "desk");
    h.answer(BOB_DESK, &invite, 200, "desk");
    let answers: Vec<Message> = h.responses_to(ALICE);
    assert_eq!(answers.len(), 2);
    for answer in answers {
        let routes: Vec<&str> = answer.headers("Record-Route").collect();
        assert_eq!(
            routes,
            ["<sip:sbc.example.com;lr>", "<sip:edge.example.com;lr>"],
            "{answer:?}"
        );
    }
}

#[test]
fn a_bye_to_the_caller_waits_for_its_ack() {
    let mut h = Harness::new(40480, |_| {});
    h.register(ALICE);
    h.register(BOB_DESK);
    let (_, sent) = h.call(ALICE, "1001");
    let invite = requests_to(&sent, BOB_DESK, Method::Invite).pop().unwrap();
    h.answer(BOB_DESK, &invite, 200, "desk");
    let ok = h.responses_to(ALICE).pop().unwrap();
    assert_eq!(ok.status(), Some(200));
    // The callee hangs up before the caller's ACK arrived.
    h.send(BOB_DESK, callee_bye(BOB_DESK, &invite, "desk"));
    let sent = h.sent();
    assert_eq!(statuses_to(&sent, BOB_DESK), vec![200]);
    assert!(
        requests_to(&sent, ALICE, Method::Bye).is_empty(),
        "RFC 3261 §15: no BYE before the ACK"
    );
    h.send(ALICE, caller_request(&ok, "ACK", 2));
    assert_eq!(
        requests_to(&h.sent(), ALICE, Method::Bye).len(),
        1,
        "the ACK releases the BYE"
    );
    h.assert_nothing_left_after_bye_answers(&[ALICE, BOB_DESK]);
}

#[test]
fn a_losing_fork_hanging_up_leaves_the_winner_talking() {
    let mut h = Harness::new(40520, |_| {});
    h.register(ALICE);
    h.register(BOB_DESK);
    h.register(BOB_MOBILE);
    let (_, sent) = h.call(ALICE, "1001");
    let desk_invite = requests_to(&sent, BOB_DESK, Method::Invite).pop().unwrap();
    let mobile_invite = requests_to(&sent, BOB_MOBILE, Method::Invite)
        .pop()
        .unwrap();
    h.answer(BOB_DESK, &desk_invite, 200, "desk");
    h.answer(BOB_MOBILE, &mobile_invite, 200, "mobile");
    h.sent();
    h.send(BOB_MOBILE, callee_bye(BOB_MOBILE, &mobile_invite, "mobile"));
    let sent = h.sent();
    assert_eq!(statuses_to(&sent, BOB_MOBILE), vec![200]);
    assert!(
        requests_to(&sent, ALICE, Method::Bye).is_empty(),
        "the caller keeps its call"
    );
    assert_eq!(h.active_calls(), 1);
}

#[test]
fn a_retransmitted_answer_gets_our_ack_again() {
    let mut h = Harness::new(40560, |_| {});
    h.register(ALICE);
    h.register(BOB_DESK);
    let (_, sent) = h.call(ALICE, "1001");
    let invite = requests_to(&sent, BOB_DESK, Method::Invite).pop().unwrap();
    h.answer(BOB_DESK, &invite, 200, "desk");
    let first = requests_to(&h.sent(), BOB_DESK, Method::Ack)
        .pop()
        .expect("ACKed once");
    // Our ACK was lost: the callee retransmits its 200 (RFC 3261 §13.3.1.4).
    h.answer(BOB_DESK, &invite, 200, "desk");
    let again = requests_to(&h.sent(), BOB_DESK, Method::Ack)
        .pop()
        .expect("ACKed again");
    assert_eq!(again.cseq(), first.cseq());
    assert_eq!(
        again.as_bytes(),
        first.as_bytes(),
        "the same ACK, not a new transaction"
    );
}

#[test]
fn while_overloaded_new_calls_are_refused_before_any_authentication() {
    let mut h = Harness::new(40600, |_| {});
    h.register(ALICE);
    h.register(BOB_DESK);
    h.switch.set_overloaded(true);
    let invite = "INVITE sip:1001@switchyard.test SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:7000;branch=z9hG4bKshed\n\
                  Max-Forwards: 70\nFrom: <sip:1000@switchyard.test>;tag=shed\nTo: <sip:1001@switchyard.test>\n\
                  Call-ID: shed@x\nCSeq: 1 INVITE\nContact: <sip:1000@127.0.0.1:7000>\nContent-Length: 0\n\n";
    h.send(ALICE, invite.to_owned());
    let refused = h.responses_to(ALICE);
    assert_eq!(refused.len(), 1);
    assert_eq!(
        refused[0].status(),
        Some(503),
        "no 407 round while overloaded"
    );
    assert!(refused[0].header("Retry-After").is_some());
    assert!(
        h.switch
            .execute(h.now, "status")
            .unwrap()
            .contains("calls refused while overloaded: 1")
    );
    h.switch.set_overloaded(false);
    let (_, sent) = h.call(ALICE, "1001");
    assert_eq!(
        requests_to(&sent, BOB_DESK, Method::Invite).len(),
        1,
        "calls flow again"
    );
}
