//! Mutation fuzzing over the torture corpora with a fixed-seed PRNG: the parser must never
//! panic or hang, every accepted message must answer every accessor, and every stateless
//! error response must itself parse.
//!
//! `SWITCHYARD_MUTATIONS=5000000 cargo test -p switchyard-sip --release --test mutation` for the
//! long run; `SWITCHYARD_MUTATION_SEED` picks another seed.

mod common;

use bytes::Bytes;
use switchyard_sip::Message;

/// xorshift64*: tiny, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const INTERESTING: &[u8] = b" \t\r\n:;,=\"<>%\\[]@?/*\x00\xff\xc3";
const SNIPPETS: &[&[u8]] = &[
    b"\r\n",
    b"\r\n ",
    b"\r\n\r\n",
    b"\n",
    b"\r",
    b"99999999999999999999999",
    b"4294967296",
    b"-1",
    b";;",
    b",,",
    b"\"",
    b"<sip:",
    b"[::1]",
    b"[2001:db8:::1]",
    b"Content-Length: 5\r\n",
    b"l: 99999\r\n",
    b"Via: SIP/2.0/UDP h;branch=z9hG4bKx\r\n",
    b"CSeq: 1 INVITE\r\n",
    b"SIP/2.0 ",
    b"%",
    b"%0",
    b"\xe2\x82",
];

fn mutate(rng: &mut Rng, data: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        let len = data.len();
        let pos = rng.below(len + 1);
        match rng.below(11) {
            0 if len > 0 => {
                let p = rng.below(len);
                data[p] ^= 1 << rng.below(8);
            }
            1 => data.insert(pos, INTERESTING[rng.below(INTERESTING.len())]),
            2 if len > 0 => {
                data.remove(rng.below(len));
            }
            3 if len > 0 => {
                // Duplicate a chunk somewhere else.
                let a = rng.below(len);
                let n = rng.below((len - a).min(64)) + 1;
                let chunk = data[a..a + n].to_vec();
                let at = rng.below(data.len() + 1);
                data.splice(at..at, chunk);
            }
            4 => data.truncate(pos),
            5 => {
                let s = SNIPPETS[rng.below(SNIPPETS.len())];
                data.splice(pos..pos, s.iter().copied());
            }
            6 => {
                // CRLF games: turn one CRLF into LF, CR, or a fold.
                if let Some(i) = data
                    .windows(2)
                    .skip(pos.min(len))
                    .position(|w| w == b"\r\n")
                {
                    let i = i + pos.min(len);
                    match rng.below(3) {
                        0 => {
                            data.remove(i);
                        }
                        1 => {
                            data.remove(i + 1);
                        }
                        _ => data.insert(i + 2, b' '),
                    }
                }
            }
            7 => {
                // Replace a run of digits by a huge number.
                if let Some(i) = data.iter().skip(pos.min(len)).position(u8::is_ascii_digit) {
                    let i = i + pos.min(len);
                    let e = data[i..]
                        .iter()
                        .position(|c| !c.is_ascii_digit())
                        .map_or(data.len(), |e| e + i);
                    let huge = [
                        "4294967296",
                        "99999999999999999999",
                        "65536",
                        "0",
                        "700",
                        "099",
                    ][rng.below(6)];
                    data.splice(i..e, huge.bytes());
                }
            }
            8 if len > 1 => {
                // Swap two lines' worth of bytes: reorder headers.
                let a = rng.below(len);
                let b = rng.below(len);
                data.swap(a, b);
            }
            9 if len > 0 => {
                // Delete a whole chunk.
                let a = rng.below(len);
                let n = rng.below((len - a).min(40)) + 1;
                data.drain(a..a + n);
            }
            _ => data.insert(pos, rng.next() as u8),
        }
    }
}

fn check(input: &[u8]) -> usize {
    let mut sum = 0;
    match Message::parse_datagram(Bytes::copy_from_slice(input)) {
        Ok(m) => sum += common::touch_everything(&m),
        Err(e) => {
            if let Some(resp) = e.stateless_response(input) {
                let r = Message::parse_datagram(resp.clone()).unwrap_or_else(|pe| {
                    panic!(
                        "stateless response does not parse ({pe}):\n{}\ninput: {:?}",
                        String::from_utf8_lossy(&resp),
                        String::from_utf8_lossy(input)
                    )
                });
                assert_eq!(
                    r.status(),
                    e.status(),
                    "input: {:?}",
                    String::from_utf8_lossy(input)
                );
                sum += common::touch_everything(&r);
            }
        }
    }
    if let Ok(Some((m, used))) = Message::parse_stream(input) {
        assert!(used <= input.len());
        assert_eq!(&input[used - m.as_bytes().len()..used], &m.as_bytes()[..]);
        sum += common::touch_everything(&m);
    }
    sum
}

#[test]
fn mutated_torture_messages() {
    let n: usize = std::env::var("SWITCHYARD_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let seed: u64 = std::env::var("SWITCHYARD_MUTATION_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5157_4348_5941_5244);
    let mut files: Vec<Vec<u8>> = common::corpus("rfc4475")
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    files.extend(common::corpus("rfc5118").into_iter().map(|(_, b)| b));
    let mut rng = Rng(seed | 1);
    let (mut parsed_ok, mut sum) = (0usize, 0usize);
    for _ in 0..n {
        let mut data = files[rng.below(files.len())].clone();
        mutate(&mut rng, &mut data);
        if Message::parse_datagram(Bytes::copy_from_slice(&data)).is_ok() {
            parsed_ok += 1;
        }
        sum = sum.wrapping_add(check(&data));
    }
    // The mutations must leave a fair share parseable, or the accessors go untested.
    assert!(parsed_ok > n / 20, "only {parsed_ok} of {n} mutants parsed");
    assert!(sum > 0);
}

#[test]
fn pathological_inputs() {
    let mut cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"\r\n\r\n".to_vec(),
        b"\r".to_vec(),
        b"SIP/2.0".to_vec(),
        b"INVITE sip:a SIP/2.0\r\n".to_vec(),
        b"INVITE sip:a SIP/2.0\r\n\r\n".to_vec(),
        b"INVITE sip:a SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\n".to_vec(),
        vec![0xff; 1000],
    ];
    // Deep folding, many headers, long tokens.
    let mut deep = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1".to_vec();
    for _ in 0..5000 {
        deep.extend_from_slice(b"\r\n ;x=1");
    }
    deep.extend_from_slice(b"\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nl: 0\r\n\r\n");
    cases.push(deep);
    let mut many = b"OPTIONS sip:a@b SIP/2.0\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n".to_vec();
    for _ in 0..3000 {
        many.extend_from_slice(b"Via: SIP/2.0/UDP h;branch=z9hG4bK1, SIP/2.0/TCP [::1]:5060\r\n");
    }
    many.extend_from_slice(b"l: 0\r\n\r\n");
    cases.push(many.clone());
    let m = Message::parse_datagram(Bytes::from(many)).unwrap();
    assert_eq!(m.vias().len(), 6000);
    let mut quotes = b"OPTIONS sip:a@b SIP/2.0\r\nX: ".to_vec();
    quotes.extend(std::iter::repeat_n(b'"', 20000));
    quotes.extend_from_slice(b"\r\n\r\n");
    cases.push(quotes);
    for c in &cases {
        check(c);
    }
    // A stream peer that never ends its header section is cut off, not buffered forever.
    let mut endless = b"OPTIONS sip:a@b SIP/2.0\r\n".to_vec();
    while endless.len() < 70 * 1024 {
        endless.extend_from_slice(
            b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
        );
    }
    assert!(Message::parse_stream(&endless).is_err());
    assert!(
        Message::parse_stream(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n").is_err(),
        "TLS on a TCP port"
    );
}
