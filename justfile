# async-katas: learn async Rust with tokio, one kata at a time.
# `just` shows the katas and your progress; `just --list` shows every command, learner's first.

set shell := ["bash", "-euo", "pipefail", "-c"]
# Arguments reach the runner as arguments ("$@"), never as shell code: `just test ticker '(2)'`
# or a test name with spaces is passed on exactly as typed.
set positional-arguments

# The runner's own messages say what failed and what to do next, so the recipes that call it
# are `[no-exit-message]`: just's "recipe failed" line would only add noise after them.
# (`KATA_RUNNER` replaces it in the runner's own tests, which run this justfile on a fixture.)
runner := env("KATA_RUNNER", "cargo run --quiet --package kata --")

# List the katas, their stages and your progress
[group('learn')]
default: _runner
    @{{ runner }} status

# Run a kata's tests on your code (default: the next unsolved kata): `just test ticker`, `just test ticker 2`, `just test ticker "does not block"`, `just test all`
[group('learn')]
[no-exit-message]
test *args: _runner
    @{{ runner }} test "$@"

# Re-run a kata's tests every time you save a file (default: the next unsolved kata)
[group('learn')]
[no-exit-message]
watch *args: _runner
    @{{ runner }} watch "$@"

# One more hint for the stage you are on, from the kata's README: `just hint ticker`, `just hint ticker 2 --all`
[group('learn')]
[no-exit-message]
hint *args: _runner
    @{{ runner }} hint "$@"

# Your code against the reference: figures per test side by side, then the code (`--chart <test>`, `--full`)
[group('learn')]
[no-exit-message]
compare *args: _runner
    @{{ runner }} compare "$@"

# Put a kata's stub back (asks first; your version is backed up under target/kata/backup)
[group('learn')]
[no-exit-message]
reset *args: _runner
    @{{ runner }} reset "$@"

# Run a kata's tests on the reference solution: `just solution ticker`
[group('learn')]
[no-exit-message]
solution *args: _runner
    @{{ runner }} test --solution "$@"

# Run a kata's demo, e.g. `just profile memory-leak-listener` (RSS of a leak, plotted; release build)
[group('learn')]
[no-exit-message]
profile *args: _runner
    @{{ runner }} profile "$@"

# Benchmarks of the reference solutions against their peers, written to BENCHMARKS.md (release; minutes)
[group('maintain')]
bench:
    benches/bench.sh

# The I/O katas against cat, gzip and a buffering upload server on files of `size` MiB made in `dir` (release; not in ci)
[group('maintain')]
bench-io size="256" dir="target/bench-io":
    cargo run --quiet --release --locked --package kata-benches --bin concat-files-bench -- --dir "$2/concat-files" --size-mib "$1"
    cargo run --quiet --release --locked --package kata-benches --bin gzip-streams-bench -- --dir "$2/gzip-streams" --size-mib "$1"
    cargo run --quiet --release --locked --package kata-benches --bin gzip-upload-bench -- --dir "$2/gzip-upload" --size-mib "$1"

# The stub check: every test fails on the untouched stub and passes on the solution
[group('maintain')]
[no-exit-message]
verify: _runner
    @{{ runner }} verify

# The wrong solutions of solutions/<kata>/mutants.md, each applied to the reference: all must be rejected
[group('maintain')]
[no-exit-message]
mutants *args: _runner
    @{{ runner }} mutants "$@"

# Everything CI checks: formatting, lints, the harness's own tests, the solutions' examples, the stub check
[group('maintain')]
ci: fmt-check clippy test-harness test-examples verify

# Formatting, checked (run `cargo fmt --all` to fix)
[group('maintain')]
fmt-check:
    cargo fmt --all -- --check

# A kata's suite is one file that its stub and its solution both compile: clippy lints it once,
# with the solution, and lints the stubs' own code (`--lib`).

# Lints on every crate and target, warnings as errors
[group('maintain')]
clippy:
    cargo clippy --workspace --all-targets --locked $(for dir in exercises/*/; do printf -- '--exclude %s ' "$(basename "$dir")"; done) -- -D warnings
    cargo clippy --lib --locked $(for dir in exercises/*/; do printf -- '--package %s ' "$(basename "$dir")"; done) -- -D warnings

# The harness, the event emitter and the runner test themselves
[group('maintain')]
test-harness:
    cargo test --locked --package kata-harness --package kata-harness-macros --package kata-heap --package kata-record --package kata-emitter --package kata

# The reference solutions' doc examples (their suites run in `verify`)
[group('maintain')]
test-examples:
    cargo test --locked --doc $(for dir in solutions/*/; do printf -- '--package %s-solution ' "$(basename "$dir")"; done)

# The runner builds silently (`--quiet`); the first time takes some seconds, so say why.
[private]
_runner:
    @test -x "${CARGO_TARGET_DIR:-target}/debug/kata" || echo "Building the kata runner (the first time only, about ten seconds)..." >&2
