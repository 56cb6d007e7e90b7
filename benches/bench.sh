#!/usr/bin/env bash
# `just bench`: every benchmark of the reference solutions in one run on this machine, written to
# BENCHMARKS.md and printed. Each Rust benchmark is a `[[bench]] harness = false` target of the
# kata-benches crate (this directory) that prints Markdown rows (see src/lib.rs); this script
# adds the feedback-loop rows, which are about the repository rather than one crate.
#
# BENCH_SKIP_COLD_CI=1 skips the fresh-clone rows (they build everything from scratch);
# BENCH_SKIP_IO=1 skips the I/O katas' comparisons with cat, gzip and a buffering upload server
# (hundreds of MiB of files).
set -euo pipefail
cd "$(dirname "$0")/.."

rows=$(mktemp)
io=$(mktemp)
trap 'rm -f "$rows" "$io"' EXIT

seconds() { date +%s.%N; }
elapsed() { awk -v now="$(seconds)" -v start="$1" 'BEGIN { print now - start }'; }

echo "building the benchmarks (release)..." >&2
cargo bench --quiet --locked --no-run -p kata-benches --bench overhead --bench classify --bench drift
for bench in overhead classify drift; do
    echo "running --bench $bench..." >&2
    cargo bench --quiet --locked -p kata-benches --bench "$bench" >>"$rows"
done

# Feedback loop 1: `just test ticker` after a one-line edit, with everything else built. The
# learner's file is copied aside and put back byte for byte, whatever happens.
stub=exercises/ticker/src/lib.rs
backup=$(mktemp)
cp "$stub" "$backup"
trap 'cp "$backup" "$stub"; rm -f "$rows" "$io" "$backup"' EXIT
just test ticker >/dev/null 2>&1 || true
echo "// a one-line edit by just bench" >>"$stub"
start=$(seconds)
just test ticker >/dev/null 2>&1 || true
edit=$(elapsed "$start")
cp "$backup" "$stub"
printf '| Feedback: `just test ticker` after a one-line edit (warm) | %.2f s | | | | < 3 s |\n' "$edit" >>"$rows"

# Feedback loop 2: every kata suite on its solution, test time only (libtest's own figure).
packages=$(for dir in solutions/*/; do printf -- '-p %s-solution ' "$(basename "$dir")"; done)
# shellcheck disable=SC2086
cargo test --quiet --locked $packages --no-run 2>/dev/null
# shellcheck disable=SC2086
suites=$(cargo test --quiet --locked $packages 2>/dev/null | sed -n 's/.*finished in \([0-9.]*\)s.*/\1/p' | awk '{ total += $1 } END { print total }')
printf '| Feedback: every kata suite on its solution (test time, build excluded) | %.2f s | | | | < 5 s |\n' "$suites" >>"$rows"

# Feedback loops 3 and 4, on a fresh clone with an empty target directory (crates already
# downloaded): a learner's first steps (`just`, then the first `just test`, whose failure on the
# stub is expected), then CI's own entry point, `.ci/run` (just is present here, so it does not
# install it).
if [ "${BENCH_SKIP_COLD_CI:-0}" != 1 ]; then
    clone=$(mktemp -d)
    git clone --quiet . "$clone/repo"
    echo "a learner's first steps on a fresh clone: just, then just test (under a minute)..." >&2
    start=$(seconds)
    (cd "$clone/repo" && CARGO_TARGET_DIR="$clone/target" just >/dev/null 2>&1)
    status=$(elapsed "$start")
    start=$(seconds)
    (cd "$clone/repo" && CARGO_TARGET_DIR="$clone/target" just test ticker >/dev/null 2>&1) || true
    first_test=$(elapsed "$start")
    printf '| Feedback: first steps on a fresh clone: `just` (%.0f s), then the first `just test` (%.0f s) | %.0f s | | | | <= 60 s |\n' \
        "$status" "$first_test" "$(awk -v a="$status" -v b="$first_test" 'BEGIN { print a + b }')" >>"$rows"
    rm -rf "$clone/target"
    echo "running .ci/run on a fresh clone (a few minutes)..." >&2
    start=$(seconds)
    (cd "$clone/repo" && CARGO_TARGET_DIR="$clone/target" bash .ci/run >/dev/null 2>&1)
    cold=$(elapsed "$start")
    rm -rf "$clone"
    printf '| Feedback: `.ci/run` on a fresh clone (empty target dir, crates cached, just present) | %.0f s | | | | <= 240 s |\n' "$cold" >>"$rows"
fi

# The I/O katas' comparisons with cat, gzip and a buffering upload server, where those katas
# exist (also `just bench-io`).
for kata in concat-files gzip-streams gzip-upload; do
    if [ "${BENCH_SKIP_IO:-0}" != 1 ] && [ -f "benches/src/bin/$kata-bench.rs" ]; then
        echo "running $kata's bench (release)..." >&2
        {
            echo
            echo "### $kata"
            echo
            cargo run --quiet --release --locked -p kata-benches --bin "$kata-bench" -- --dir "target/bench-io/$kata"
        } >>"$io"
    fi
done

{
    echo "# Benchmarks"
    echo
    echo "Written by \`just bench\` on $(date -u +%Y-%m-%d): $(nproc) cores, $(uname -sr), $(rustc --version),"
    echo "$(python3 --version 2>&1 || echo 'no python3')."
    echo "Every figure is the median of several runs, ours and the peer's measured in the same run."
    echo "\"ours / peer\" below 1 means ours is faster."
    echo
    echo "| row | ours | peer | peer's figure | ours / peer | target |"
    echo "|---|---|---|---|---|---|"
    cat "$rows"
    cat <<'NOTES'

## Reading the figures

- **PCLimit vs a bare semaphore.** Both spawn a task per job. PCLimit also keeps its own queue
  (a `VecDeque` behind a mutex, in call order, so jobs start in call order on any runtime; a
  cancelled job is found by binary search on its number), exact active/pending counts, and a
  oneshot per job to hand over the slot; on no-op jobs that bookkeeping is the whole cost.
  `join_all` and `buffer_unordered` without tasks are cheaper still because nothing runs in
  parallel: every job is polled by one task. Spawning each job's task only once it is admitted
  comes close to the semaphore, but the handle then needs a per-job cell shared with the queue
  (the abort handle exists only from admission on, and an abort racing the admission must not
  be lost): more machinery than the kata teaches, so the reference does not.
- **Work queue, and why about 1.5x is its floor on tokio.** The peer polls every job inside
  one task (`join_all`), so even on the multi-thread runtime it runs on one thread and hands
  nothing off. A fixed pool of workers on one queue cannot: every job is pushed by the caller's
  task and popped by a worker task, and its result goes back through a oneshot, so each job
  costs at least one wake-up of another task, on the multi-thread runtime often on another
  thread (an unpark, and the job's memory moving between caches). The current-thread rows are
  the same code without cross-thread hand-offs: their gap to the peer is the pool's own
  bookkeeping (boxing, panics caught, results by oneshot), and the rest of the multi-thread gap
  is the hand-offs. Two pools that hand off differently, the reference (a `tokio::sync::Mutex`
  around an mpsc receiver, passed from worker to worker: a task wake-up per job) and the
  `std_pool` sketch (a `std` `Mutex<VecDeque>` held only to pop, a `Notify` for idle workers),
  land within a few percent of each other across threads, though the sketch is clearly cheaper
  on one thread: the cost is the hand-off itself, not the lock around the queue. That ratio
  varies from run to run more than any other row (1.33x to 1.75x over eight runs on 2026-11-27,
  median 1.45x): the 1.5x target holds at the median, not in every run. The reference keeps
  the tokio mutex because the kata teaches that design and its trap (a guard held across the
  job), which the `std` design turns into a compile error.
- **Python peers.** The jobs do nothing, so the figures are each runtime's cost per job, not
  work: asyncio runs everything on one thread without atomics, while the Rust side pays for
  allocation per job and thread-safe hand-offs, and still wins by the ratio shown, short of the
  20x target. Jobs that do real work were not measured here.
- **Ticker.** tokio's timer wheel has a 1 ms resolution and rounds deadlines up, so every tick is
  0-2 ms late, for `tokio::time::interval` as much as for the ticker. What matters is the drift:
  a ticker that sleeps 50 ms after each tick would gain its own overhead at every tick (a slope
  of several ms/s); sleeping until the grid's next instant keeps the slope at zero.
- **Every suite together.** The 5 s target was set for the first four katas and is not met by
  fifteen: the gzip suites stream megabytes in real time (memory that must stay flat, work
  that must stay off the runtime's thread), concat-files and the limiter katas race real
  threads, and graceful-shutdown races a cancel against its waiters 50,000 times. One kata's
  suite, which is what a learner waits for, takes at most about 3.5 s.
- **First steps.** `just` builds the runner and the first `just test` the harness, tokio and the
  kata. The longest chain in that build is syn -> tokio's macros -> tokio -> the harness -> the
  suite, so two choices keep it short: dependencies are compiled without optimisation (an
  opt-level 1 for every dependency also applied to syn and the proc-macro crates, and doubled
  the first build, while no suite on the paused clock ran measurably faster with an optimised
  tokio), except deflate and the regex engine, which only the later katas build and whose
  suites would run ten times slower; and `#[kata_harness::test]` takes rstest's `#[case]`
  syntax itself, so rstest's macro crate, the regex engine it uses and a second major version
  of syn are not built at all. Before both: 105 s for the two commands on this machine.
NOTES
    if [ -s "$io" ]; then
        echo
        echo "## I/O katas against the command-line tools"
        cat "$io"
    fi
} >BENCHMARKS.md
cat BENCHMARKS.md
