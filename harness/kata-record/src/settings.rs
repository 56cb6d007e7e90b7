//! The environment settings a learner may change, read the same way by the harness (which obeys
//! them) and the runner (which checks them before a run, so a typo is one clear error rather than
//! every test failing with it).

use std::time::Duration;

/// Real seconds before the watchdog stops a test (default 5; decimals allowed).
pub const WATCHDOG_VAR: &str = "KATA_WATCHDOG_SECS";
/// MiB of heap a test may use before it is stopped (default 512).
pub const MEMORY_LIMIT_VAR: &str = "KATA_MEMORY_LIMIT_MIB";

/// The watchdog's limit when `KATA_WATCHDOG_SECS` is not set.
pub const DEFAULT_WATCHDOG: Duration = Duration::from_secs(5);
/// The memory ceiling, in MiB, when `KATA_MEMORY_LIMIT_MIB` is not set: ten times what the
/// hungriest suite needs, and far below any machine's memory, even with a test per core.
pub const DEFAULT_MEMORY_LIMIT_MIB: u64 = 512;

/// The limits the environment asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub watchdog: Duration,
    /// Bytes.
    pub memory_limit: usize,
}

impl Settings {
    /// Reads both variables from the environment; an error says which value makes no sense.
    pub fn from_env() -> Result<Self, String> {
        Ok(Self {
            watchdog: parse_watchdog(std::env::var(WATCHDOG_VAR).ok().as_deref())?,
            memory_limit: parse_memory_limit(std::env::var(MEMORY_LIMIT_VAR).ok().as_deref())?,
        })
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            watchdog: DEFAULT_WATCHDOG,
            memory_limit: (DEFAULT_MEMORY_LIMIT_MIB << 20) as usize,
        }
    }
}

/// `KATA_WATCHDOG_SECS`: a number of seconds above 0 (at most a day).
pub fn parse_watchdog(value: Option<&str>) -> Result<Duration, String> {
    let Some(text) = value.map(str::trim).filter(|text| !text.is_empty()) else {
        return Ok(DEFAULT_WATCHDOG);
    };
    match text.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 && secs <= 86_400.0 => {
            Ok(Duration::from_secs_f64(secs))
        }
        _ => Err(format!(
            "{WATCHDOG_VAR}={text:?} is not a time limit: give a number of seconds above 0 (such \
             as 5, the default, or 2.5), or unset it"
        )),
    }
}

/// `KATA_MEMORY_LIMIT_MIB`: a whole number of MiB from 16 up.
pub fn parse_memory_limit(value: Option<&str>) -> Result<usize, String> {
    let Some(text) = value.map(str::trim).filter(|text| !text.is_empty()) else {
        return Ok((DEFAULT_MEMORY_LIMIT_MIB << 20) as usize);
    };
    match text.parse::<u64>() {
        Ok(mib) if (16..=1 << 20).contains(&mib) => Ok((mib << 20) as usize),
        _ => Err(format!(
            "{MEMORY_LIMIT_VAR}={text:?} is not a memory ceiling: give a whole number of MiB from \
             16 up ({DEFAULT_MEMORY_LIMIT_MIB} is the default), or unset it"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_setting_takes_seconds_above_zero() {
        assert_eq!(parse_watchdog(None), Ok(DEFAULT_WATCHDOG));
        assert_eq!(parse_watchdog(Some(" ")), Ok(DEFAULT_WATCHDOG));
        assert_eq!(parse_watchdog(Some("2.5")), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_watchdog(Some("30")), Ok(Duration::from_secs(30)));
        for bad in ["abc", "-1", "0", "inf", "NaN", "1e9"] {
            let error = parse_watchdog(Some(bad)).unwrap_err();
            assert!(
                error.starts_with(&format!("KATA_WATCHDOG_SECS=\"{bad}\"")),
                "{error}"
            );
        }
    }

    #[test]
    fn the_memory_setting_takes_whole_mib_from_16() {
        assert_eq!(parse_memory_limit(None), Ok(512 << 20));
        assert_eq!(parse_memory_limit(Some("64")), Ok(64 << 20));
        for bad in ["abc", "-1", "0", "15", "2.5"] {
            let error = parse_memory_limit(Some(bad)).unwrap_err();
            assert!(error.contains("is not a memory ceiling"), "{error}");
        }
    }
}
