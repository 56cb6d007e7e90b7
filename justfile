# async-katas: learn async Rust with tokio, one kata at a time.
# `just` shows the katas and your progress; `just --list` shows every command, learner's first.

set shell := ["bash", "-euo", "pipefail", "-c"]

# The runner's own messages say what failed and what to do next, so the recipes that call it
# are `[no-exit-message]`: just's "recipe failed" line would only add noise after them.
runner := "cargo run --quiet --package kata --"

# List the katas, their stages and your progress
[group('learn')]
default: _runner
    @{{ runner }} status

# Run a kata's tests on your code (default: the next unsolved kata), e.g. `just test ticker stage1`; `just test all` runs every kata
[group('learn')]
[no-exit-message]
test kata="" stage="": _runner
    @{{ runner }} test {{ kata }} {{ stage }}

# Re-run a kata's tests every time you save a file (default: the next unsolved kata)
[group('learn')]
[no-exit-message]
watch kata="": _runner
    @{{ runner }} watch {{ kata }}

# The hints for the stage you are on, from the kata's README, e.g. `just hint ticker`
[group('learn')]
[no-exit-message]
hint kata stage="": _runner
    @{{ runner }} hint {{ kata }} {{ stage }}

# Your code against the reference: figures per test side by side, then a diff of the code
[group('learn')]
[no-exit-message]
compare kata *flags: _runner
    @{{ runner }} compare {{ kata }} {{ flags }}

# Put a kata's stub back (asks first; your version is backed up under target/kata/backup)
[group('learn')]
[no-exit-message]
reset kata *flags: _runner
    @{{ runner }} reset {{ kata }} {{ flags }}

# Run a kata's tests on the reference solution
[group('learn')]
[no-exit-message]
solution kata stage="": _runner
    @{{ runner }} test --solution {{ kata }} {{ stage }}

# Run a kata's profiling demo, e.g. `just profile memory-leak-listener` (RSS of a leak, plotted)
[group('learn')]
profile kata *args:
    cargo run --release --package kata-benches --bin profile-{{ kata }} -- {{ args }}

# Benchmarks of the reference solutions against their peers, written to BENCHMARKS.md (release; minutes)
[group('maintain')]
bench:
    benches/bench.sh

# The I/O katas against cat and gzip on files of `size` MiB made in `dir` (release; not in ci)
[group('maintain')]
bench-io size="256" dir="target/bench-io":
    cargo run --quiet --release --locked --package kata-benches --bin concat-files-bench -- --dir {{ dir }}/concat-files --size-mib {{ size }}
    cargo run --quiet --release --locked --package kata-benches --bin gzip-streams-bench -- --dir {{ dir }}/gzip-streams --size-mib {{ size }}

# The stub check: every test fails on the untouched stub and passes on the solution
[group('maintain')]
[no-exit-message]
verify: _runner
    @{{ runner }} verify

# Everything CI checks: formatting, lints, the harness's own tests, the solutions, the stub check
[group('maintain')]
ci: fmt-check clippy test-harness test-solutions verify

# Formatting, checked (run `cargo fmt --all` to fix)
[group('maintain')]
fmt-check:
    cargo fmt --all -- --check

# Lints on every crate and target, warnings as errors
[group('maintain')]
clippy:
    cargo clippy --workspace --all-targets --locked -- -D warnings

# The harness, the event emitter and the runner test themselves
[group('maintain')]
test-harness:
    cargo test --locked --package kata-harness --package kata-harness-macros --package kata-emitter --package kata

# Every kata's suite on its reference solution
[group('maintain')]
test-solutions:
    cargo test --locked $(for dir in solutions/*/; do printf -- '--package %s-solution ' "$(basename "$dir")"; done)

# The runner builds silently (`--quiet`); the first time that is most of a minute, so say why.
[private]
_runner:
    @test -x "${CARGO_TARGET_DIR:-target}/debug/kata" || echo "Building the kata runner (the first time only, about a minute)..." >&2
