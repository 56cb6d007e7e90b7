//! `just reset`: not written yet.

use std::process::ExitCode;

use anyhow::Result;

pub fn run(_kata: &str, _yes: bool) -> Result<ExitCode> {
    anyhow::bail!("just reset is not written yet")
}
