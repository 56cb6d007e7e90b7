//! `just profile <kata>`: a kata's demo, built in release mode and run in the learner's terminal
//! (the memory-leak-listener's RSS plot, say). Demos live in the kata-benches crate as
//! `benches/src/bin/profile-<kata>.rs`.

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::cargo;
use crate::repo::{Kata, Repo};
use crate::style;

/// The demo binary of a kata, if it has one.
fn demo(repo: &Repo, kata: &Kata) -> Option<String> {
    let name = format!("profile-{}", kata.name);
    repo.root
        .join("benches/src/bin")
        .join(format!("{name}.rs"))
        .is_file()
        .then_some(name)
}

pub fn run(name: &str, args: &[String]) -> Result<ExitCode> {
    let repo = Repo::here()?;
    let kata = repo.kata(name)?;
    let Some(binary) = demo(&repo, kata) else {
        let with: Vec<&str> = repo
            .katas()
            .iter()
            .filter(|kata| demo(&repo, kata).is_some())
            .map(|kata| kata.name.as_str())
            .collect();
        bail!(
            "kata {} has no demo to profile; the katas with one: {}",
            kata.name,
            if with.is_empty() {
                "none".to_owned()
            } else {
                with.join(", ")
            }
        );
    };
    eprintln!(
        "{}",
        style::dim("building the demo in release mode (a minute or two the first time)...")
    );
    let mut cargo_args = vec![
        "run".to_owned(),
        "--quiet".to_owned(),
        "--release".to_owned(),
        "--package".to_owned(),
        "kata-benches".to_owned(),
        "--bin".to_owned(),
        binary,
        "--".to_owned(),
    ];
    cargo_args.extend(args.iter().cloned());
    Ok(if cargo::run_in_view(&repo.root, cargo_args)? {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
