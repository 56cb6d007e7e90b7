//! `just watch`: not written yet.

use std::process::ExitCode;

use anyhow::Result;

pub fn run(_kata: Option<&str>) -> Result<ExitCode> {
    anyhow::bail!("just watch is not written yet")
}
