//! RFC 7587 §6.1 fmtp parsing and printing.

use switchyard_codec::OpusFmtp;

#[test]
fn empty_fmtp_gives_the_rfc_defaults() {
    let fmtp = OpusFmtp::parse("");
    assert_eq!(fmtp, OpusFmtp::default());
    assert_eq!(fmtp.max_playback_rate, 48_000);
    assert_eq!(fmtp.sprop_max_capture_rate, 48_000);
    assert!(!fmtp.stereo && !fmtp.sprop_stereo && !fmtp.cbr);
    assert!(!fmtp.use_inband_fec && !fmtp.use_dtx);
    assert_eq!(fmtp.max_average_bitrate, None);
    assert_eq!(fmtp.to_fmtp(), "");
}

#[test]
fn parses_a_typical_sip_offer() {
    let fmtp = OpusFmtp::parse("maxplaybackrate=16000;useinbandfec=1;usedtx=1");
    assert_eq!(fmtp.max_playback_rate, 16_000);
    assert!(fmtp.use_inband_fec);
    assert!(fmtp.use_dtx);
    assert!(!fmtp.stereo);
    assert_eq!(
        fmtp.to_fmtp(),
        "maxplaybackrate=16000;useinbandfec=1;usedtx=1"
    );
}

#[test]
fn parses_a_browser_offer_with_spaces_and_case() {
    let fmtp = OpusFmtp::parse("minptime=10; useinbandfec=1 ; Stereo=0; SPROP-STEREO=0");
    assert_eq!(fmtp.min_ptime, Some(10));
    assert!(fmtp.use_inband_fec);
    assert!(!fmtp.stereo && !fmtp.sprop_stereo);
    assert_eq!(fmtp.to_fmtp(), "minptime=10;useinbandfec=1");

    let stereo = OpusFmtp::parse("stereo=1; sprop-stereo=1");
    assert!(stereo.stereo && stereo.sprop_stereo);
}

#[test]
fn parses_every_known_parameter() {
    let text = "minptime=10;ptime=20;maxptime=60;maxplaybackrate=24000;\
                sprop-maxcapturerate=16000;maxaveragebitrate=40000;stereo=1;\
                sprop-stereo=1;cbr=1;useinbandfec=1;usedtx=1";
    let fmtp = OpusFmtp::parse(text);
    let expected = OpusFmtp {
        max_playback_rate: 24_000,
        sprop_max_capture_rate: 16_000,
        max_average_bitrate: Some(40_000),
        stereo: true,
        sprop_stereo: true,
        cbr: true,
        use_inband_fec: true,
        use_dtx: true,
        ptime: Some(20),
        max_ptime: Some(60),
        min_ptime: Some(10),
    };
    assert_eq!(fmtp, expected);
    assert_eq!(fmtp.to_fmtp(), text);
    assert_eq!(OpusFmtp::parse(&fmtp.to_fmtp()), fmtp);
}

#[test]
fn garbage_and_out_of_range_values_keep_the_defaults() {
    for text in [
        "garbage",
        ";;;",
        "=",
        "==1",
        "useinbandfec",
        "useinbandfec=yes",
        "useinbandfec=2",
        "maxplaybackrate=4000",
        "maxplaybackrate=96000",
        "maxplaybackrate=-1",
        "maxplaybackrate=16k",
        "maxaveragebitrate=100",
        "maxaveragebitrate=600000",
        "ptime=0",
        "maxptime=500",
        "x-unknown=1;another=thing",
        "\u{1F600}=\u{1F600}",
    ] {
        assert_eq!(OpusFmtp::parse(text), OpusFmtp::default(), "{text:?}");
    }
    // A bad value does not spoil the good ones around it.
    let fmtp = OpusFmtp::parse("usedtx=maybe;useinbandfec=1;maxplaybackrate=abc;cbr=1");
    assert!(fmtp.use_inband_fec && fmtp.cbr && !fmtp.use_dtx);
    assert_eq!(fmtp.max_playback_rate, 48_000);
}

#[test]
fn the_last_occurrence_of_a_parameter_wins() {
    let fmtp =
        OpusFmtp::parse("useinbandfec=1;useinbandfec=0;maxplaybackrate=8000;maxplaybackrate=12000");
    assert!(!fmtp.use_inband_fec);
    assert_eq!(fmtp.max_playback_rate, 12_000);
}
