//! Test data that is the same on every run: bytes with no structure, and text that compresses
//! like a real log file.
//!
//! Suites and benchmarks need large inputs that no clever code can shortcut: pseudo-random bytes
//! do not compress and have no lines, so a chunk out of place or a byte lost always shows.
//! The generator is xorshift64: tiny, fast (several GB/s) and good enough for this, not for
//! anything that needs real randomness.

/// A repeatable stream of pseudo-random bytes (xorshift64).
#[derive(Debug, Clone)]
pub struct Xorshift {
    state: u64,
}

impl Xorshift {
    /// A stream for `seed`; equal seeds give equal streams.
    pub fn new(seed: u64) -> Self {
        // Spread small seeds over the state, and never start from 0 (xorshift's fixed point).
        Self {
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        }
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }

    /// Fills `out` with the next bytes of the stream.
    pub fn fill(&mut self, out: &mut [u8]) {
        let mut chunks = out.chunks_exact_mut(8);
        for chunk in &mut chunks {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let last = self.next_u64().to_le_bytes();
            rest.copy_from_slice(&last[..rest.len()]);
        }
    }
}

/// `len` pseudo-random bytes from `seed`.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0; len];
    Xorshift::new(seed).fill(&mut out);
    out
}

/// `len` bytes of log-like text (`GET /index.html 200 took ms ...` lines): it compresses about
/// as well as real logs do, which random bytes never would.
pub fn text(len: usize) -> Vec<u8> {
    const WORDS: [&[u8]; 16] = [
        b"GET ",
        b"POST ",
        b"/index.html ",
        b"/api/v1/users ",
        b"200 ",
        b"404 ",
        b"took ",
        b"ms ",
        b"user=",
        b"session ",
        b"cache ",
        b"hit ",
        b"miss ",
        b"bytes ",
        b"from ",
        b"10.0.0.",
    ];
    let mut out = Vec::with_capacity(len + 64);
    let mut random = Xorshift::new(7);
    while out.len() < len {
        let state = random.next_u64();
        for shift in (0..48).step_by(4) {
            out.extend_from_slice(WORDS[(state >> shift) as usize & 15]);
        }
        out.extend_from_slice(&[b'0' + (state >> 60) as u8 % 10, b'\n']);
    }
    out.truncate(len);
    out
}

/// Numbered log lines (`00000001 GET /index.html ...`), `len` bytes of them, made as they are
/// read: a large input that never sits in memory, where every line says where it belongs (a
/// chunk lost, doubled or out of place always shows), and that compresses fast, which keeps
/// the tests quick.
pub struct NumberedLog {
    line: [u8; 64],
    at: usize,
    number: u32,
    left: u64,
}

impl NumberedLog {
    /// `len` bytes of log lines, numbered from 1.
    pub fn new(len: usize) -> Self {
        let mut log = Self {
            line: *b"00000000 GET /index.html 200 took 3 ms from 10.0.0.7 user=alice\n",
            at: 0,
            number: 0,
            left: len as u64,
        };
        log.next_line();
        log
    }

    fn next_line(&mut self) {
        self.number += 1;
        let mut rest = self.number;
        for digit in self.line[..8].iter_mut().rev() {
            *digit = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        self.at = 0;
    }
}

impl std::io::Read for NumberedLog {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut filled = 0;
        while filled < buf.len() && self.left > 0 {
            if self.at == self.line.len() {
                self.next_line();
            }
            let take = (self.line.len() - self.at)
                .min(buf.len() - filled)
                .min(usize::try_from(self.left).unwrap_or(usize::MAX));
            buf[filled..filled + take].copy_from_slice(&self.line[self.at..self.at + take]);
            (self.at, filled, self.left) = (self.at + take, filled + take, self.left - take as u64);
        }
        Ok(filled)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_numbered_log_is_exactly_its_length_and_numbers_its_lines() {
        use std::io::Read;
        let mut text = String::new();
        NumberedLog::new(200).read_to_string(&mut text).unwrap();
        assert_eq!(text.len(), 200);
        assert!(text.starts_with("00000001 GET /index.html"), "{text}");
        assert!(
            text.contains("\n00000002 GET") && text.ends_with("\n00000004"),
            "{text}"
        );
        assert!(!text.contains("00000005"), "{text}");
    }
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_bytes_and_others_differ() {
        assert_eq!(random_bytes(1, 1000), random_bytes(1, 1000));
        assert_ne!(random_bytes(1, 1000), random_bytes(2, 1000));
        assert_ne!(
            random_bytes(0, 64),
            vec![0; 64],
            "seed 0 is not a fixed point"
        );
        // A prefix of a longer stream is the shorter stream, whatever the lengths.
        assert_eq!(random_bytes(3, 13), random_bytes(3, 21)[..13]);
    }

    #[test]
    fn random_bytes_have_no_structure_to_speak_of() {
        let data = random_bytes(9, 1 << 16);
        let mut counts = [0_u32; 256];
        for &byte in &data {
            counts[usize::from(byte)] += 1;
        }
        // 256 expected per value; every value shows up, none dominates.
        assert!(
            counts.iter().all(|&n| (150..400).contains(&n)),
            "{counts:?}"
        );
    }

    #[test]
    fn text_is_lines_of_words_of_the_length_asked() {
        let log = text(10_000);
        assert_eq!(log.len(), 10_000);
        assert!(std::str::from_utf8(&log).is_ok());
        assert!(log.iter().filter(|&&b| b == b'\n').count() > 50);
        assert_eq!(text(10), log[..10]);
    }
}
