//! Self-checks of the test peers and the analysis pipeline, without the daemon: if these
//! fail, the e2e failures elsewhere are about the harness, not about switchyard.

use std::time::Duration;
use switchyard_e2e::slot::offset;
use switchyard_e2e::{Baresip, BaresipConfig, Sipp, Slot, analyze_wav};

#[test]
fn baresip_peer_to_peer_carries_both_tones() {
    let slot = Slot::acquire();
    // No daemon on this port: registration fails, direct calls still work.
    let nowhere = slot.port(offset::SCRATCH);
    let cfg = |user: &str, base, hz, auto| BaresipConfig::new(user, nowhere, base, hz, auto);
    let mut a = Baresip::start(cfg("1000", slot.port(offset::BARESIP_A), 1000.0, false));
    let mut b = Baresip::start(cfg("1001", slot.port(offset::BARESIP_B), 1500.0, true));
    a.dial(&format!(
        "sip:1001@127.0.0.1:{}",
        slot.port(offset::BARESIP_B)
    ));
    a.wait_event("CALL_ESTABLISHED", Duration::from_secs(10));
    b.wait_event("CALL_ESTABLISHED", Duration::from_secs(10));
    // Let ~3 s of audio flow: wait on the recording's size, not a fixed sleep.
    switchyard_e2e::wait_until(
        Duration::from_secs(10),
        "3 s of audio recorded by the callee",
        || {
            b.heard_wav()
                .filter(|p| p.metadata().map(|m| m.len() > 3 * 16000).unwrap_or(false))
        },
        || b.log(),
    );
    a.hangup();
    a.wait_event("CALL_CLOSED", Duration::from_secs(10));
    b.wait_event("CALL_CLOSED", Duration::from_secs(10));
    let heard_b = analyze_wav(&b.heard_wav().expect("callee recording"));
    heard_b.assert_tone(1000.0, "callee hears caller");
    let heard_a = analyze_wav(&a.heard_wav().expect("caller recording"));
    heard_a.assert_tone(1500.0, "caller hears callee");
}

#[test]
fn sipp_uac_to_uas_direct() {
    let slot = Slot::acquire();
    let uas_port = slot.port(offset::SIPP_UAS).to_string();
    let uas_mp = slot.port(offset::SIPP_UAS_MEDIA).to_string();
    let mut uas = Sipp::spawn(
        "uas_echo",
        None,
        &["-p", &uas_port, "-mp", &uas_mp, "-rtp_echo", "-m", "5"],
    );
    let uac_port = slot.port(offset::SIPP_UAC).to_string();
    let uac_mp = slot.port(offset::SIPP_UAC_MEDIA).to_string();
    let mut uac = Sipp::spawn(
        "uac",
        Some(slot.port(offset::SIPP_UAS)),
        &[
            "-p", &uac_port, "-mp", &uac_mp, "-s", "1001", "-key", "caller", "1000", "-au", "1000",
            "-ap", "pass1000", "-m", "5", "-r", "5", "-d", "200", "-timeout", "20",
        ],
    );
    uac.wait(Duration::from_secs(30)).assert_ok(5, "uac");
    uas.wait(Duration::from_secs(10)).assert_ok(5, "uas");
}
