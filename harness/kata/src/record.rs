//! Reading the figures the harness writes for each test (see `kata_harness::record`).
//!
//! The runner sets `KATA_RECORD_DIR` for a suite run; every test then leaves one file of
//! `key=value` lines there. The format is the harness's; this module only reads it, so that the
//! runner does not depend on the harness (and on tokio).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// The variable the harness reads (`kata_harness::record::RECORD_DIR_VAR`).
pub const RECORD_DIR_VAR: &str = "KATA_RECORD_DIR";

/// What the harness saw of one test. `None`: not measured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// `passed`, `failed`, `deadlock` or `hung`.
    pub outcome: String,
    pub real: Option<Duration>,
    pub virtual_time: Option<Duration>,
    pub peak_heap: Option<u64>,
    pub max_concurrency: Option<u64>,
}

/// Parses one record file: `(test name, record)`, or `None` if it has no test name.
pub fn parse(text: &str) -> Option<(String, Record)> {
    let mut test = None;
    let mut record = Record::default();
    for (key, value) in text.lines().filter_map(|line| line.split_once('=')) {
        let number = value.trim().parse::<u64>().ok();
        match key.trim() {
            "test" => test = Some(value.trim().to_owned()),
            "outcome" => record.outcome = value.trim().to_owned(),
            "real_ns" => record.real = number.map(Duration::from_nanos),
            "virtual_ns" => record.virtual_time = number.map(Duration::from_nanos),
            "peak_heap" => record.peak_heap = number,
            "max_concurrency" => record.max_concurrency = number,
            _ => {} // a newer harness may write more
        }
    }
    Some((test?, record))
}

/// Every record in `dir`, by test name.
pub fn read_dir(dir: &Path) -> BTreeMap<String, Record> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    entries
        .flatten()
        .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
        .filter_map(|text| parse(&text))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_record_is_read() {
        let text = "test=stage2_b::case_1\noutcome=passed\nreal_ns=5000\nvirtual_ns=1000000000\n\
                    peak_heap=4096\nmax_concurrency=3\n";
        let (test, record) = parse(text).unwrap();
        assert_eq!(test, "stage2_b::case_1");
        assert_eq!(
            record,
            Record {
                outcome: "passed".to_owned(),
                real: Some(Duration::from_micros(5)),
                virtual_time: Some(Duration::from_secs(1)),
                peak_heap: Some(4096),
                max_concurrency: Some(3),
            }
        );
    }

    #[test]
    fn missing_figures_stay_unknown_and_unknown_keys_are_skipped() {
        let (_, record) = parse("test=a\noutcome=hung\nreal_ns=7\ncolour=blue\n").unwrap();
        assert_eq!(record.outcome, "hung");
        assert_eq!(record.virtual_time, None);
        assert_eq!(record.peak_heap, None);
        assert!(parse("outcome=passed\n").is_none(), "no name, no record");
    }
}
