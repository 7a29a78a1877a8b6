//! SDP parse/serialize and offer/answer tests on real-world bodies.

use std::net::SocketAddr;

use switchyard_sdp::{
    Direction, Error, OriginState, SessionDescription, anchor, answer, check_answer,
};

/// RFC 4566 §5 / RFC 8866 §5 example.
const RFC_EXAMPLE: &str = "v=0\r\n\
o=jdoe 2890844526 2890842807 IN IP4 10.47.16.5\r\n\
s=SDP Seminar\r\n\
i=A Seminar on the session description protocol\r\n\
u=http://www.example.com/seminars/sdp.pdf\r\n\
e=j.doe@example.com (Jane Doe)\r\n\
c=IN IP4 224.2.17.12/127\r\n\
t=2873397496 2873404696\r\n\
a=recvonly\r\n\
m=audio 49170 RTP/AVP 0\r\n\
m=video 51372 RTP/AVP 99\r\n\
a=rtpmap:99 h263-1998/90000\r\n";

/// What `sipp -sn uac` sends (its [media_ip]/[media_port] filled in).
const SIPP_UAC: &str = "v=0\r\n\
o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

/// A baresip 1.0 offer, LF-only line ends as some stacks write them.
const BARESIP: &str = "v=0\n\
o=- 3891298110 3891298110 IN IP4 192.168.1.20\n\
s=-\n\
c=IN IP4 192.168.1.20\n\
t=0 0\n\
a=tool:baresip 1.0.0\n\
m=audio 10164 RTP/AVP 0 8 96 101\n\
b=AS:64\n\
a=rtpmap:0 PCMU/8000\n\
a=rtpmap:8 PCMA/8000\n\
a=rtpmap:96 opus/48000/2\n\
a=fmtp:96 stereo=1;sprop-stereo=1\n\
a=rtpmap:101 telephone-event/8000\n\
a=fmtp:101 0-15\n\
a=rtcp:10165 IN IP4 192.168.1.20\n\
a=rtcp-mux\n\
a=sendrecv\n\
a=label:1\n\
a=ssrc:1129376112 cname:f7b2a7c4-1f05\n\
a=ptime:20\n";

/// A browser-like offer: opus first, ICE, DTLS, BUNDLE and a video stream.
const WEBRTC: &str = "v=0\r\n\
o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
t=0 0\r\n\
a=group:BUNDLE 0 1\r\n\
a=msid-semantic: WMS\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 0 8 126\r\n\
c=IN IP4 203.0.113.7\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
a=candidate:1 1 udp 2122260223 203.0.113.7 54321 typ host\r\n\
a=ice-ufrag:abcd\r\n\
a=ice-pwd:0123456789abcdef01234567\r\n\
a=fingerprint:sha-256 AA:BB\r\n\
a=setup:actpass\r\n\
a=mid:0\r\n\
a=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=rtcp-fb:111 transport-cc\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\n\
a=rtpmap:126 telephone-event/8000\r\n\
a=sendrecv\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
c=IN IP4 203.0.113.7\r\n\
a=mid:1\r\n\
a=rtpmap:96 VP8/90000\r\n";

/// The browser-like offer keyed with SDES instead (as SIP phones offering SRTP do): the
/// relay can carry it, ICE and DTLS attributes are still to be dropped.
fn webrtc_with_sdes() -> String {
    WEBRTC.replace("UDP/TLS/RTP/SAVPF", "RTP/SAVPF").replace(
        "a=setup:actpass\r\n",
        "a=setup:actpass\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n",
    )
}

fn relay() -> SocketAddr {
    "198.51.100.1:20000".parse().unwrap()
}

fn parse(s: &str) -> SessionDescription {
    SessionDescription::parse(s.as_bytes()).unwrap()
}

#[test]
fn rfc_example_round_trips_byte_for_byte() {
    let sdp = parse(RFC_EXAMPLE);
    assert_eq!(sdp.origin.username, "jdoe");
    assert_eq!(sdp.origin.session_version, 2890842807);
    assert_eq!(sdp.session_name, "SDP Seminar");
    assert_eq!(sdp.connection.as_ref().unwrap().address, "224.2.17.12/127");
    assert_eq!(sdp.media.len(), 2);
    assert_eq!(sdp.media[1].formats, ["99"]);
    assert_eq!(String::from_utf8(sdp.to_bytes()).unwrap(), RFC_EXAMPLE);
    // The session-level recvonly applies to the audio stream that has none of its own.
    assert_eq!(sdp.audio_direction(), Direction::RecvOnly);
    assert_eq!(
        sdp.audio_destination(),
        Some("224.2.17.12:49170".parse().unwrap())
    );
}

#[test]
fn sipp_uac_round_trips_and_exposes_audio() {
    let sdp = parse(SIPP_UAC);
    assert_eq!(String::from_utf8(sdp.to_bytes()).unwrap(), SIPP_UAC);
    assert_eq!(
        sdp.audio_destination(),
        Some("127.0.0.1:6000".parse().unwrap())
    );
    assert_eq!(sdp.audio_direction(), Direction::SendRecv);
    let codecs = sdp.audio_codecs();
    assert_eq!(codecs.len(), 1);
    assert_eq!(
        (
            codecs[0].payload_type,
            codecs[0].name.as_str(),
            codecs[0].clock_rate
        ),
        (0, "PCMU", 8000)
    );
}

#[test]
fn baresip_offer_parses_lf_only_and_reserializes_with_crlf() {
    let sdp = parse(BARESIP);
    let out = String::from_utf8(sdp.to_bytes()).unwrap();
    assert_eq!(out, BARESIP.replace('\n', "\r\n"));
    assert_eq!(SessionDescription::parse(out.as_bytes()).unwrap(), sdp);
    let audio = sdp.audio().unwrap();
    assert_eq!(audio.bandwidths, ["AS:64"]);
    assert_eq!(audio.attribute("ptime"), Some("20"));
    let codecs: Vec<_> = sdp
        .audio_codecs()
        .into_iter()
        .map(|c| (c.payload_type, c.name, c.clock_rate, c.channels, c.fmtp))
        .collect();
    assert_eq!(
        codecs,
        [
            (0, "PCMU".into(), 8000, None, None),
            (8, "PCMA".into(), 8000, None, None),
            (
                96,
                "opus".into(),
                48000,
                Some(2),
                Some("stereo=1;sprop-stereo=1".into())
            ),
            (
                101,
                "telephone-event".into(),
                8000,
                None,
                Some("0-15".into())
            ),
        ]
    );
}

#[test]
fn static_payload_types_without_rtpmap_use_rfc3551_defaults() {
    let sdp = parse(&SIPP_UAC.replace(
        "m=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
        "m=audio 6000 RTP/AVP 8 9 18 0 97\r\n",
    ));
    let codecs: Vec<_> = sdp
        .audio_codecs()
        .into_iter()
        .map(|c| (c.payload_type, c.name, c.clock_rate))
        .collect();
    // 97 has no rtpmap and no static meaning: left out.
    assert_eq!(
        codecs,
        [
            (8, "PCMA".into(), 8000),
            (9, "G722".into(), 8000),
            (18, "G729".into(), 8000),
            (0, "PCMU".into(), 8000)
        ]
    );
}

#[test]
fn unknown_and_rare_lines_are_kept_in_order() {
    let text = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=x\r\ni=info\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nr=7d 1h 0 25h\r\n\
z=2882844526 -1h\r\na=foo:bar\r\nm=audio 4000 RTP/AVP 0\r\ni=media title\r\nc=IN IP4 10.0.0.2\r\nb=AS:80\r\nk=prompt\r\n\
a=sendonly\r\n";
    let sdp = parse(text);
    assert_eq!(
        sdp.other_lines,
        ["i=info", "r=7d 1h 0 25h", "z=2882844526 -1h"]
    );
    assert_eq!(sdp.media[0].other_lines, ["i=media title", "k=prompt"]);
    assert_eq!(String::from_utf8(sdp.to_bytes()).unwrap(), text);
    assert_eq!(
        sdp.audio_destination(),
        Some("10.0.0.2:4000".parse().unwrap())
    );
    assert_eq!(sdp.audio_direction(), Direction::SendOnly);
}

#[test]
fn hold_detection() {
    let with = |extra: &str| parse(&format!("{SIPP_UAC}{extra}"));
    assert_eq!(
        with("a=sendonly\r\n").audio_direction(),
        Direction::SendOnly
    );
    assert_eq!(
        with("a=inactive\r\n").audio_direction(),
        Direction::Inactive
    );
    assert_eq!(
        with("a=recvonly\r\n").audio_direction(),
        Direction::RecvOnly
    );
    assert!(with("a=sendonly\r\n").audio_direction().is_hold());
    assert!(!with("a=sendrecv\r\n").audio_direction().is_hold());

    // RFC 2543 hold: c=0.0.0.0 removes the receive half and has no destination.
    let old_hold = parse(&SIPP_UAC.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0"));
    assert_eq!(old_hold.audio_direction(), Direction::SendOnly);
    assert!(old_hold.audio_direction().is_hold());
    assert_eq!(old_hold.audio_destination(), None);
    let old_recvonly = parse(&format!(
        "{}a=recvonly\r\n",
        SIPP_UAC.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0")
    ));
    assert_eq!(old_recvonly.audio_direction(), Direction::Inactive);

    // The media-level attribute overrides the session level one.
    let text = SIPP_UAC.replace("t=0 0\r\n", "t=0 0\r\na=inactive\r\n");
    assert_eq!(parse(&text).audio_direction(), Direction::Inactive);
    assert_eq!(
        parse(&format!("{text}a=sendrecv\r\n")).audio_direction(),
        Direction::SendRecv
    );

    // A rejected stream has no destination.
    let rejected = parse(&SIPP_UAC.replace("m=audio 6000", "m=audio 0"));
    assert_eq!(rejected.audio_destination(), None);
    assert_eq!(rejected.audio_direction(), Direction::Inactive);
}

#[test]
fn anchor_rewrites_addresses_origin_and_rtcp() {
    let offer = parse(BARESIP);
    let mut origin = OriginState::new(42);
    let out = anchor(&offer, relay(), &mut origin, None).unwrap();
    assert_eq!(out.audio_destination(), Some(relay()));
    assert_eq!(out.origin.username, "switchyard");
    assert_eq!(out.origin.session_id, "42");
    assert_eq!(out.origin.session_version, 1);
    assert_eq!(out.origin.address, "198.51.100.1");
    let audio = out.audio().unwrap();
    assert_eq!(audio.formats, ["0", "8", "96", "101"]);
    assert_eq!(audio.attribute("rtcp"), Some("20001"));
    assert_eq!(audio.attribute("rtcp-mux"), None);
    assert_eq!(audio.attribute("ptime"), Some("20"));
    assert_eq!(out.audio_direction(), Direction::SendRecv);
    let text = String::from_utf8(out.to_bytes()).unwrap();
    assert!(!text.contains("192.168.1.20"), "{text}");
    assert!(
        text.starts_with(
            "v=0\r\no=switchyard 42 1 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 198.51.100.1\r\n"
        ),
        "{text}"
    );
    // The output is itself valid SDP.
    assert_eq!(SessionDescription::parse(text.as_bytes()).unwrap(), out);

    // Same body again: same version. A changed body (hold): version + 1 (RFC 3264 §8).
    let again = anchor(&offer, relay(), &mut origin, None).unwrap();
    assert_eq!(again.origin.session_version, 1);
    let hold = parse(&BARESIP.replace("a=sendrecv", "a=sendonly"));
    let held = anchor(&hold, relay(), &mut origin, None).unwrap();
    assert_eq!(held.origin.session_version, 2);
    assert_eq!(held.audio_direction(), Direction::SendOnly);
}

#[test]
fn anchor_drops_ice_and_rejects_video() {
    let offer = parse(&webrtc_with_sdes());
    let out = anchor(&offer, relay(), &mut OriginState::new(7), None).unwrap();
    let text = String::from_utf8(out.to_bytes()).unwrap();
    for gone in [
        "candidate",
        "ice-",
        "fingerprint",
        "setup",
        "rtcp-mux",
        "BUNDLE",
        "203.0.113.7",
        "0.0.0.0",
    ] {
        assert!(!text.contains(gone), "{gone} left in:\n{text}");
    }
    assert_eq!(out.media.len(), 2);
    assert_eq!(out.media[0].port, 20000);
    assert_eq!(out.media[1].port, 0);
    assert_eq!(out.media[1].formats, ["96"]);
    assert_eq!(
        out.media[0].connection.as_ref().unwrap().address,
        "198.51.100.1"
    );
    assert_eq!(
        out.media[1].connection.as_ref().unwrap().address,
        "198.51.100.1"
    );
}

#[test]
fn anchor_filters_codecs() {
    let offer = parse(&webrtc_with_sdes());
    let allowed: &[&str] = &["pcma", "PCMU", "telephone-event"];
    let out = anchor(&offer, relay(), &mut OriginState::new(7), Some(allowed)).unwrap();
    let audio = out.audio().unwrap();
    assert_eq!(audio.formats, ["0", "8", "126"]);
    // rtpmap/fmtp/rtcp-fb of opus are gone, the telephone-event rtpmap stays.
    assert!(
        audio
            .attributes
            .iter()
            .all(|a| !a.value.as_deref().unwrap_or("").starts_with("111"))
    );
    assert_eq!(
        out.audio_codecs()
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["PCMU", "PCMA", "telephone-event"]
    );

    // Only DTMF left is no call.
    let err = anchor(
        &offer,
        relay(),
        &mut OriginState::new(7),
        Some(&["telephone-event", "G729"]),
    )
    .unwrap_err();
    assert!(matches!(err, Error::NoCommonCodec), "{err:?}");
    let no_audio =
        parse("v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 5000 RTP/AVP 96\r\n");
    assert!(matches!(
        anchor(&no_audio, relay(), &mut OriginState::new(1), None),
        Err(Error::NoAudio)
    ));
}

#[test]
fn answer_picks_offerers_first_supported_codec_and_mirrors_direction() {
    let offer = parse(BARESIP);
    let mut origin = OriginState::new(9);
    let ans = answer(&offer, relay(), &mut origin, &["PCMA", "PCMU"]).unwrap();
    // The offer lists PCMU before PCMA: the offerer's order wins.
    assert_eq!(ans.audio().unwrap().formats, ["0", "101"]);
    assert_eq!(ans.audio_destination(), Some(relay()));
    assert_eq!(ans.audio_direction(), Direction::SendRecv);
    assert_eq!(ans.audio().unwrap().attribute("fmtp"), Some("101 0-15"));
    assert_eq!(ans.times, offer.times);
    check_answer(&offer, &ans).unwrap();

    let only_pcma = answer(&offer, relay(), &mut origin, &["pcma"]).unwrap();
    assert_eq!(only_pcma.audio().unwrap().formats, ["8", "101"]);
    assert_eq!(only_pcma.origin.session_version, 2);

    let hold = parse(&BARESIP.replace("a=sendrecv", "a=sendonly"));
    assert_eq!(
        answer(&hold, relay(), &mut origin, &["PCMU"])
            .unwrap()
            .audio_direction(),
        Direction::RecvOnly
    );
    let inactive = parse(&BARESIP.replace("a=sendrecv", "a=inactive"));
    assert_eq!(
        answer(&inactive, relay(), &mut origin, &["PCMU"])
            .unwrap()
            .audio_direction(),
        Direction::Inactive
    );

    // No telephone-event offered: none answered. Nothing in common: an error (488).
    let sipp = parse(SIPP_UAC);
    assert_eq!(
        answer(&sipp, relay(), &mut origin, &["PCMU"])
            .unwrap()
            .audio()
            .unwrap()
            .formats,
        ["0"]
    );
    assert!(matches!(
        answer(&sipp, relay(), &mut origin, &["PCMA"]),
        Err(Error::NoCommonCodec)
    ));

    // Video is rejected but keeps its m= line. Telephone-event only at the codec's clock
    // rate (RFC 4733 §2.1): 126 is 8000 Hz, opus 48000 Hz.
    let plain = WEBRTC.replace("UDP/TLS/RTP/SAVPF", "RTP/AVP");
    let webrtc = parse(&plain);
    let ans = answer(&webrtc, relay(), &mut origin, &["PCMU", "opus"]).unwrap();
    assert_eq!(ans.media.len(), 2);
    assert_eq!(ans.media[0].formats, ["111"]);
    assert_eq!(ans.media[1].port, 0);
    check_answer(&webrtc, &ans).unwrap();
    let wideband_events = parse(&plain.replace("111 0 8 126", "111 0 8 126 127").replace(
        "a=sendrecv",
        "a=rtpmap:127 telephone-event/48000\r\na=sendrecv",
    ));
    let ans = answer(&wideband_events, relay(), &mut origin, &["opus"]).unwrap();
    assert_eq!(ans.media[0].formats, ["111", "127"]);
    let ans = answer(&wideband_events, relay(), &mut origin, &["PCMU"]).unwrap();
    assert_eq!(ans.media[0].formats, ["0", "126"]);
    check_answer(&wideband_events, &ans).unwrap();

    // We terminate no SRTP: an SRTP offer gets no answer of ours.
    for srtp in [WEBRTC.to_owned(), webrtc_with_sdes()] {
        assert!(matches!(
            answer(&parse(&srtp), relay(), &mut origin, &["PCMU"]),
            Err(Error::UnsupportedTransport(_))
        ));
    }
}

#[test]
fn anchor_keeps_rfc2543_hold_as_an_explicit_direction() {
    let mut origin = OriginState::new(5);
    let hold = parse(&SIPP_UAC.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0"));
    assert_eq!(hold.audio_direction(), Direction::SendOnly);
    let out = anchor(&hold, relay(), &mut origin, None).unwrap();
    assert_eq!(out.audio_destination(), Some(relay()));
    assert_eq!(out.audio().unwrap().attribute("sendonly"), Some(""));
    assert_eq!(
        out.audio_direction(),
        Direction::SendOnly,
        "the far side must see the hold"
    );
    // recvonly + c=0.0.0.0 is inactive; the stream's own direction line is replaced.
    let both = parse(&format!(
        "{}a=recvonly\r\n",
        SIPP_UAC.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0")
    ));
    let out = anchor(&both, relay(), &mut origin, None).unwrap();
    let text = String::from_utf8(out.to_bytes()).unwrap();
    assert!(text.contains("a=inactive\r\n"), "{text}");
    assert!(!text.contains("a=recvonly"), "{text}");
    assert!(!text.contains("0.0.0.0"), "{text}");
    // A session-level direction is made explicit on the stream too, and sendrecv stays as
    // written (no line added).
    let session_hold = parse(&SIPP_UAC.replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n"));
    let out = anchor(&session_hold, relay(), &mut origin, None).unwrap();
    assert_eq!(out.audio().unwrap().attribute("sendonly"), Some(""));
    let out = anchor(&parse(SIPP_UAC), relay(), &mut origin, None).unwrap();
    assert_eq!(out.audio().unwrap().attributes.len(), 1, "rtpmap only");
}

#[test]
fn anchor_passes_sdes_keys_and_refuses_dtls_srtp() {
    let mut origin = OriginState::new(6);
    let sdes = parse(&webrtc_with_sdes());
    let out = anchor(&sdes, relay(), &mut origin, None).unwrap();
    let audio = out.audio().unwrap();
    assert_eq!(audio.proto, "RTP/SAVPF");
    assert_eq!(
        audio.attribute("crypto"),
        Some("1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"),
        "SRTP passes the relay untouched: the keys go end to end"
    );
    assert_eq!(audio.attribute("fingerprint"), None);

    let dtls = anchor(&parse(WEBRTC), relay(), &mut origin, None).unwrap_err();
    assert!(
        matches!(&dtls, Error::UnsupportedTransport(p) if p == "UDP/TLS/RTP/SAVPF"),
        "{dtls:?}"
    );
    // RTP/SAVP keyed by a fingerprint only (RFC 5763 as some phones write it): DTLS too.
    let fingerprint_only = WEBRTC.replace("UDP/TLS/RTP/SAVPF", "RTP/SAVP");
    assert!(matches!(
        anchor(&parse(&fingerprint_only), relay(), &mut origin, None),
        Err(Error::UnsupportedTransport(_))
    ));
}

#[test]
fn a_rejected_first_audio_stream_is_skipped() {
    let two = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
               m=audio 0 RTP/AVP 0\r\na=inactive\r\n\
               m=audio 6000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendonly\r\n";
    let offer = parse(two);
    assert_eq!(offer.audio().unwrap().port, 0);
    assert_eq!(offer.active_audio().unwrap().port, 6000);
    assert_eq!(
        offer.audio_destination(),
        Some("10.0.0.1:6000".parse().unwrap())
    );
    assert_eq!(offer.audio_direction(), Direction::SendOnly);
    assert_eq!(offer.audio_codecs()[0].name, "PCMA");

    let mut origin = OriginState::new(8);
    let anchored = anchor(&offer, relay(), &mut origin, None).unwrap();
    assert_eq!(
        (anchored.media[0].port, anchored.media[1].port),
        (0, relay().port())
    );
    assert_eq!(anchored.audio_destination(), Some(relay()));

    let ans = answer(&offer, relay(), &mut origin, &["PCMA"]).unwrap();
    assert_eq!((ans.media[0].port, ans.media[1].port), (0, relay().port()));
    assert_eq!(ans.media[1].formats, ["8", "101"]);
    assert_eq!(
        ans.audio_direction(),
        Direction::RecvOnly,
        "mirrors the stream it answers, not the rejected one"
    );
    check_answer(&offer, &ans).unwrap();

    // Every audio stream rejected: the anchored copy keeps them all rejected.
    let none = parse(&two.replace("m=audio 6000", "m=audio 0"));
    let anchored = anchor(&none, relay(), &mut origin, None).unwrap();
    assert!(anchored.media.iter().all(|m| m.port == 0));
    assert!(matches!(
        answer(&none, relay(), &mut origin, &["PCMA"]),
        Err(Error::NoAudio)
    ));
}

#[test]
fn check_answer_catches_violations() {
    let offer = parse(BARESIP);
    let ok = |body: &str| check_answer(&offer, &parse(body));
    let base = "v=0\r\no=- 1 1 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\n";
    ok(&format!("{base}m=audio 7000 RTP/AVP 8\r\n")).unwrap();
    // Dynamic payload types match by name and rate, whatever the number.
    ok(&format!(
        "{base}m=audio 7000 RTP/AVP 120\r\na=rtpmap:120 opus/48000/2\r\n"
    ))
    .unwrap();
    // Rejecting the stream is always allowed.
    ok(&format!("{base}m=audio 0 RTP/AVP 0\r\n")).unwrap();

    let violations = [
        format!("{base}m=audio 7000 RTP/AVP 18\r\n"), // static PT not offered
        format!("{base}m=audio 7000 RTP/AVP 120\r\na=rtpmap:120 speex/8000\r\n"), // dynamic codec not offered
        format!("{base}m=audio 7000 RTP/AVP 96\r\na=rtpmap:96 opus/16000\r\n"),   // wrong rate
        format!("{base}m=audio 7000 RTP/AVP 0\r\nm=video 0 RTP/AVP 31\r\n"),      // extra m= line
        format!("{base}m=video 7000 RTP/AVP 0\r\n"), // wrong media type
        format!("{base}m=audio 7000 RTP/SAVP 0\r\n"), // wrong transport
    ];
    for body in &violations {
        assert!(
            matches!(ok(body), Err(Error::AnswerMismatch(_))),
            "accepted:\n{body}"
        );
    }
    let no_m = SessionDescription::parse(base.as_bytes()).unwrap();
    assert!(check_answer(&offer, &no_m).is_err());
}

#[test]
fn required_lines_and_malformed_lines_are_errors() {
    let cases = [
        "",
        "o=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\n",          // no v=
        "v=1\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\n",   // wrong version
        "v=0\r\ns=-\r\nt=0 0\r\n",                    // no o=
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nt=0 0\r\n", // no s=
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 999.1.1.1\r\n", // bad address
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP6 1.2.3.4\r\n", // wrong family
        "v=0\r\no=- 1 x IN IP4 1.2.3.4\r\ns=-\r\n",   // version not a number
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nm=audio x RTP/AVP 0\r\n", // bad port
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nm=audio 5000 RTP/AVP\r\n", // no formats
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nhello\r\n", // not type=value
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nm=audio 5000 RTP/AVP 0\r\ns=again\r\n",
    ];
    for case in cases {
        assert!(
            SessionDescription::parse(case.as_bytes()).is_err(),
            "accepted {case:?}"
        );
    }
    assert!(matches!(
        SessionDescription::parse(b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=\xff\r\n"),
        Err(Error::NotUtf8)
    ));
    // t= may be missing (sloppy phones); we write t=0 0 back.
    let sdp = parse("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nm=audio 5000 RTP/AVP 0\r\n");
    assert!(
        String::from_utf8(sdp.to_bytes())
            .unwrap()
            .contains("t=0 0\r\n")
    );
}

#[test]
fn truncations_and_mutations_never_panic() {
    for sample in [RFC_EXAMPLE, SIPP_UAC, BARESIP, WEBRTC] {
        let bytes = sample.as_bytes();
        for end in 0..=bytes.len() {
            if let Ok(sdp) = SessionDescription::parse(&bytes[..end]) {
                exercise(&sdp);
            }
        }
        // Overwrite each byte with a few troublesome values.
        for i in 0..bytes.len() {
            for b in [b' ', b'\n', b'=', b'/', b':', b'0', 0xff] {
                let mut mutated = bytes.to_vec();
                mutated[i] = b;
                if let Ok(sdp) = SessionDescription::parse(&mutated) {
                    exercise(&sdp);
                }
            }
        }
    }
}

fn exercise(sdp: &SessionDescription) {
    let _ = sdp.audio_destination();
    let _ = sdp.audio_direction();
    let _ = sdp.audio_codecs();
    let reparsed = SessionDescription::parse(&sdp.to_bytes()).expect("our own output parses");
    assert_eq!(reparsed.media.len(), sdp.media.len());
    let mut origin = OriginState::new(1);
    if let Ok(anchored) = anchor(
        sdp,
        relay(),
        &mut origin,
        Some(&["PCMU", "PCMA", "telephone-event"]),
    ) {
        SessionDescription::parse(&anchored.to_bytes()).expect("anchored output parses");
    }
    if let Ok(ans) = answer(sdp, relay(), &mut origin, &["PCMU", "PCMA", "opus"])
        && let Err(e) = check_answer(sdp, &ans)
    {
        panic!(
            "{e}: offer\n{}\nanswer\n{}",
            String::from_utf8_lossy(&sdp.to_bytes()),
            String::from_utf8_lossy(&ans.to_bytes())
        );
    }
}
