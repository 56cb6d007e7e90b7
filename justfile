# async-katas: learn async Rust with tokio, one kata at a time.
# `just` shows the katas and your progress; `just --list` shows every command.

set shell := ["bash", "-euo", "pipefail", "-c"]

runner := "cargo run --quiet --package kata --"

# List the katas, their stages and your progress
default:
    @{{ runner }} status

# Run a kata's tests on your code (default: the next unsolved kata), e.g. `just test ticker stage1`; `just test all` runs every kata
test kata="" stage="":
    @{{ runner }} test {{ kata }} {{ stage }}

# Re-run a kata's tests every time you save a file (default: the next unsolved kata)
watch kata="":
    @{{ runner }} watch {{ kata }}

# The hints for the stage you are on, from the kata's README, e.g. `just hint ticker`
hint kata stage="":
    @{{ runner }} hint {{ kata }} {{ stage }}

# Your code against the reference: figures per test side by side, then a diff of the code
compare kata *flags:
    @{{ runner }} compare {{ kata }} {{ flags }}

# Put a kata's stub back (asks first; your version is backed up under target/kata/backup)
reset kata *flags:
    @{{ runner }} reset {{ kata }} {{ flags }}

# Run a kata's tests on the reference solution
solution kata stage="":
    @{{ runner }} test --solution {{ kata }} {{ stage }}

# Run a kata's profiling demo, e.g. `just profile memory-leak-listener` (RSS of a leak, plotted)
profile kata *args:
    cargo run --release --package {{ kata }}-solution --bin profile -- {{ args }}

# Benchmarks of the reference solutions against their peers, written to BENCHMARKS.md (release; minutes)
bench:
    benches/bench.sh

# The I/O katas against cat and gzip on files of `size` MiB made in `dir` (release; not in ci)
bench-io size="256" dir="target/bench-io":
    cargo run --quiet --release --locked --package concat-files-solution --bin bench -- --dir {{ dir }}/concat-files --size-mib {{ size }}
    cargo run --quiet --release --locked --package gzip-streams-solution --bin bench -- --dir {{ dir }}/gzip-streams --size-mib {{ size }}

# The stub check: every test fails on the untouched stub and passes on the solution
verify:
    @{{ runner }} verify

# Everything CI checks: formatting, lints, the harness's own tests, the solutions, the stub check
ci: fmt-check clippy test-harness test-solutions verify

# Formatting, checked (run `cargo fmt --all` to fix)
fmt-check:
    cargo fmt --all -- --check

# Lints on every crate and target, warnings as errors
clippy:
    cargo clippy --workspace --all-targets --locked -- -D warnings

# The harness, the event emitter and the runner test themselves
test-harness:
    cargo test --locked --package kata-harness --package kata-harness-macros --package kata-emitter --package kata

# Every kata's suite on its reference solution
test-solutions:
    cargo test --locked $(for dir in solutions/*/; do printf -- '--package %s-solution ' "$(basename "$dir")"; done)
