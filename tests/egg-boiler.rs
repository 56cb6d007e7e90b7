//! The egg-boiler kata's suite, run against both `exercises/egg-boiler` and
//! `solutions/egg-boiler`: the kata's precise specification.
//!
//! Eggs boil for 5000, 2000, 3500 and 4000 ms. The suite's own eggs mark on a timeline when they
//! are taken out of the boiler, start boiling (first polled), finish or are dropped, and a probe
//! counts how many boil at once; a fake web marks when each URL is requested. On the paused clock
//! every one of those instants is exact. Stage by stage the tests reject the usual wrong answers:
//! an egg that boils from when it was made instead of when it is awaited, or from when the boiler
//! handed it out; eggs boiled one at a time where they should boil together, or all at once
//! where two pots should; pots that serve in the wrong order, start before they are asked, or
//! spawn a task per egg that a timeout cannot stop; a download that fetches ahead of its consumer
//! (prefetching, `buffered`, everything at once), requests a URL nobody asked for, stops or
//! skips at a fetch error, filters in the wrong order or keeps everything in memory; and a
//! hand-written stream that ends early while its hen is still laying, numbers eggs wrongly,
//! loses its waker or wakes itself in a busy loop, asks an ended hen again, or gets its size
//! hint or `is_terminated` wrong.

kata_harness::install_allocator!();

#[path = "egg-boiler/support.rs"]
mod support;

use std::pin::pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use egg_boiler::{
    Boiled, EggBoiler, Fetched, Tally, all_at_once, boil, download, egg_boiler, failures,
    one_by_one, tally, two_pots_as_ready, two_pots_in_laid_order,
};
use futures::future::join_all;
use futures::stream::{self, FusedStream, Stream, StreamExt};
use kata_harness::completion::{alive_tasks, completes_within};
use kata_harness::heap::{self, assert_peak_independent};
use kata_harness::leaks::TaskBaseline;
use kata_harness::report::{check, check_eq, check_seq};
use kata_harness::timing::{At, Life, assert_elapsed, assert_schedule};
use kata_harness::wakers::CountingWaker;
use kata_harness::{Stage, ms};
use support::{
    Answer, FakeWeb, ForgetfulHen, Kitchen, PATIENCE, Pots, QuietWeb, Way, boiled, dropped,
    eggs_numbered, farm_urls, laying_hen, never_laid, response, served, unreachable,
};
use tokio::time::{Instant, sleep, timeout};

const STAGE1: Stage = Stage::new("egg-boiler", 1);
const STAGE2: Stage = Stage::new("egg-boiler", 2);
const STAGE3: Stage = Stage::new("egg-boiler", 3);

/// The boil times of the four eggs of every egg test, in ms.
const EGGS: [u64; 4] = [5000, 2000, 3500, 4000];

// ---------------------------------------------------------------------------------------------
// Stage 1: the egg boiler, and four ways to boil its eggs.
//
//   let egg = boil(3, 3500 ms);   sleep(1000 ms);   egg.await
//   0 ms: made, not boiling .......... 1000 ms: boiling ================= 4500 ms: Boiled { egg: 3 }

#[kata_harness::test]
async fn stage1_an_egg_boils_for_its_time_from_when_it_is_awaited() {
    let start = Instant::now();
    let egg = boil(3, ms(3500));
    sleep(ms(1000)).await;
    let hint = STAGE1.hint("boil sleeps for the boil time, then gives the egg's number back");
    let done = completes_within("boil(3, 3500 ms)", egg, PATIENCE, &hint).await;
    check_eq(
        "what boil(3, 3500 ms) gives",
        done,
        Boiled { egg: 3 },
        &hint,
    );
    assert_elapsed(
        "boil(3, 3500 ms), made at 0 ms and awaited at 1000 ms, was done",
        start.elapsed(),
        ms(4500),
        &STAGE1.hint(
            "an egg boils from when it is first awaited: make boil an `async fn` whose body \
             sleeps. tokio::time::sleep(d) fixes its deadline when it is called, so calling it \
             before the future is awaited starts the clock too early",
        ),
    );
}

//   let eggs: Vec<_> = egg_boiler([5000, 2000, 3500, 4000]).collect().await;  // at 0 ms
//   sleep(1000 ms);  join_all(eggs).await;  // the eggs boil from 1000 ms:
//
//              0 ms   1000      3000      4500 5000 6000
//   egg 1:            |=============================|
//   egg 2:            |=========|
//   egg 3:            |===================|
//   egg 4:            |========================|

#[kata_harness::test]
async fn stage1_the_boiler_hands_out_eggs_without_boiling_them() {
    let kitchen = Kitchen::new();
    let hint = STAGE1.hint(
        "the boiler's stream must end after the last boil time: stream::iter(..) ends by itself",
    );
    let taking = egg_boiler(EGGS.map(ms)).collect::<Vec<_>>();
    let eggs = completes_within(
        "taking every egg out of egg_boiler(..)",
        taking,
        PATIENCE,
        &hint,
    )
    .await;
    let hint = STAGE1.hint(
        "handing out an egg is not boiling it: the items are the eggs' futures, made and not \
         awaited (StreamExt::map, not then)",
    );
    assert_elapsed(
        "taking four eggs out of the boiler",
        kitchen.now(),
        ms(0),
        &hint,
    );
    check_eq("eggs handed out for 4 boil times", eggs.len(), 4, &hint);

    sleep(ms(1000)).await;
    let watched = eggs
        .into_iter()
        .enumerate()
        .map(|(index, egg)| kitchen.watch(index + 1, egg));
    let hint = STAGE1.hint("each egg is done once its boil time has passed");
    let boiled_eggs = completes_within(
        "the eggs, awaited together",
        join_all(watched),
        PATIENCE,
        &hint,
    )
    .await;
    check_eq(
        "what the eggs give, in the order they were handed out",
        boiled_eggs,
        eggs_numbered(&[1, 2, 3, 4]),
        &STAGE1.hint("number the eggs from 1, in the order of their boil times (enumerate() + 1)"),
    );
    let hint = STAGE1.hint(
        "an egg boils from when it is first awaited (here 1000 ms), for its own boil time: an egg \
         that starts boiling when the boiler hands it out (a spawned task, a sleep made in the \
         map closure) is done too early",
    );
    for (index, boil_ms) in EGGS.into_iter().enumerate() {
        kitchen.check_life(index + 1, boil_ms, boiled(1000, 1000 + boil_ms), &hint);
    }
}

//   one_by_one:  0 ms         5000    7000        10500        14500
//   egg 1:       |============|
//   egg 2:                    |=======|
//   egg 3:                            |===========|
//   egg 4:                                        |============|
//   returns:                                                   [1, 2, 3, 4]

#[kata_harness::test]
async fn stage1_one_by_one_boils_each_egg_after_the_last() {
    let kitchen = Kitchen::new();
    let hint = STAGE1.hint("one_by_one returns once the last egg is boiled");
    let all = one_by_one(kitchen.eggs(&EGGS));
    let boiled_eggs = completes_within("one_by_one(eggs)", all, PATIENCE, &hint).await;
    check_eq(
        "what one_by_one(eggs) gives",
        boiled_eggs,
        eggs_numbered(&[1, 2, 3, 4]),
        &STAGE1.hint("every egg's output, in the order the eggs came"),
    );
    let hint = STAGE1.hint(
        "await each egg before you take the next: the boil times add up (5000 + 2000 + 3500 + \
         4000 ms)",
    );
    assert_elapsed(
        "one_by_one(eggs) returned",
        kitchen.now(),
        ms(14_500),
        &hint,
    );
    let lives = [
        boiled(0, 5000),
        boiled(5000, 7000),
        boiled(7000, 10_500),
        boiled(10_500, 14_500),
    ];
    for (number, life) in lives.into_iter().enumerate() {
        kitchen.check_life(number + 1, EGGS[number], life, &hint);
    }
    kitchen
        .probe()
        .assert_limit("eggs boiling at once", 1, &hint);
    assert_schedule(
        "when one_by_one took each egg out of the boiler",
        &kitchen.laid(),
        &[ms(0), ms(5000), ms(7000), ms(10_500)],
        &STAGE1.hint(
            "take the next egg only once the last one is boiled (while let Some(egg) = \
             eggs.next().await, or StreamExt::then), not all of them first: a stream's next \
             item should be made only when it is needed",
        ),
    );
}

//   all_at_once: 0 ms     2000   3500  4000  5000
//   egg 1:       |===========================|
//   egg 2:       |========|
//   egg 3:       |===============|
//   egg 4:       |=====================|
//   returns:                                 [1, 2, 3, 4]

#[kata_harness::test]
async fn stage1_all_at_once_boils_every_egg_together() {
    let kitchen = Kitchen::new();
    let hint = STAGE1.hint("all_at_once returns once the last egg is boiled");
    let all = all_at_once(kitchen.eggs(&EGGS));
    let boiled_eggs = completes_within("all_at_once(eggs)", all, PATIENCE, &hint).await;
    check_eq(
        "what all_at_once(eggs) gives",
        boiled_eggs,
        eggs_numbered(&[1, 2, 3, 4]),
        &STAGE1.hint(
            "in laid order, not in the order the eggs finished: join_all keeps its input's \
             order, FuturesUnordered does not",
        ),
    );
    let hint = STAGE1.hint(
        "take every egg, then await them together (futures::future::join_all): all four \
         boil from 0 ms, so all_at_once takes as long as the longest egg, 5000 ms",
    );
    assert_elapsed("all_at_once(eggs) returned", kitchen.now(), ms(5000), &hint);
    for (index, boil_ms) in EGGS.into_iter().enumerate() {
        kitchen.check_life(index + 1, boil_ms, boiled(0, boil_ms), &hint);
    }
    kitchen
        .probe()
        .assert_limit("eggs boiling at once", 4, &hint);
}

//   two_pots_in_laid_order:
//              0 ms      2000          5000        8500  9000
//   pot 1:     |==== egg 1 ============|== egg 3 ==|
//   pot 2:     |= egg 2 =| done, waits |== egg 4 ========|
//   served:                            1, 2        3     4
//
//   Egg 2 is done at 2000 but is served after egg 1, and its pot takes no new egg meanwhile:
//   head-of-line blocking, the price of keeping the order.

#[kata_harness::test]
async fn stage1_two_pots_in_laid_order_hold_an_early_egg_back() {
    let kitchen = Kitchen::new();
    let pot = two_pots_in_laid_order(kitchen.eggs(&EGGS));
    let hint = STAGE1.hint("serve the four eggs, then end");
    let served_eggs = kitchen
        .serve("two_pots_in_laid_order(eggs)", pot, &hint)
        .await;
    kitchen.probe().assert_limit(
        "eggs boiling at once in two pots",
        2,
        &STAGE1.hint(
            "two pots: two eggs boiling from the start, never more (buffered(POTS) and \
             buffer_unordered(POTS) take the number of futures to keep going at once)",
        ),
    );
    check_seq(
        "eggs served by two_pots_in_laid_order",
        &served_eggs,
        &served(&[(1, 5000), (2, 5000), (3, 8500), (4, 9000)]),
        &STAGE1.hint(
            "two eggs boil at once and are served in laid order: egg 2, done at 2000 ms, waits \
             for egg 1 (StreamExt::buffered(2))",
        ),
    );
    let hint = STAGE1.hint(
        "a pot takes a new egg only when the egg it holds has been served: buffered(2) keeps at \
         most two eggs taken, boiling or waiting, so eggs 3 and 4 go in at 5000 ms",
    );
    let lives = [
        boiled(0, 5000),
        boiled(0, 2000),
        boiled(5000, 8500),
        boiled(5000, 9000),
    ];
    for (number, life) in lives.into_iter().enumerate() {
        kitchen.check_life(number + 1, EGGS[number], life, &hint);
    }
    assert_schedule(
        "when the pots took each egg out of the boiler",
        &kitchen.laid(),
        &[ms(0), ms(0), ms(5000), ms(5000)],
        &hint,
    );
}

//   two_pots_as_ready:
//              0 ms      2000          5000  5500        9000
//   pot 1:     |==== egg 1 ============|== egg 4 ========|
//   pot 2:     |= egg 2 =|== egg 3 ==========|
//   served:              2             1     3           4

#[kata_harness::test]
async fn stage1_two_pots_as_ready_serve_each_egg_when_it_is_done() {
    let kitchen = Kitchen::new();
    let pot = two_pots_as_ready(kitchen.eggs(&EGGS));
    let hint = STAGE1.hint("serve the four eggs, then end");
    let served_eggs = kitchen.serve("two_pots_as_ready(eggs)", pot, &hint).await;
    kitchen.probe().assert_limit(
        "eggs boiling at once in two pots",
        2,
        &STAGE1.hint(
            "two pots: two eggs boiling from the start, never more (buffered(POTS) and \
             buffer_unordered(POTS) take the number of futures to keep going at once)",
        ),
    );
    check_seq(
        "eggs served by two_pots_as_ready",
        &served_eggs,
        &served(&[(2, 2000), (1, 5000), (3, 5500), (4, 9000)]),
        &STAGE1.hint(
            "two eggs boil at once and each is served as soon as it is done, whatever its place \
             (StreamExt::buffer_unordered(2))",
        ),
    );
    let hint = STAGE1.hint(
        "a pot takes the next egg as soon as its egg is done: egg 3 goes in at 2000 ms, egg 4 \
         at 5000 ms",
    );
    let lives = [
        boiled(0, 5000),
        boiled(0, 2000),
        boiled(2000, 5500),
        boiled(5000, 9000),
    ];
    for (number, life) in lives.into_iter().enumerate() {
        kitchen.check_life(number + 1, EGGS[number], life, &hint);
    }
    assert_schedule(
        "when the pots took each egg out of the boiler",
        &kitchen.laid(),
        &[ms(0), ms(0), ms(2000), ms(5000)],
        &hint,
    );
}

//   let pot = two_pots_...(eggs);   sleep(1000 ms);   collect the pot
//   0 ms: nothing boils ............ 1000 ms: the first two eggs go in, and the schedule above
//                                    follows, 1000 ms later

#[kata_harness::test]
#[case::in_laid_order(Pots::InLaidOrder, [(1, 6000), (2, 6000), (3, 9500), (4, 10_000)])]
#[case::as_ready(Pots::AsReady, [(2, 3000), (1, 6000), (3, 6500), (4, 10_000)])]
async fn stage1_the_pots_boil_nothing_until_asked(
    #[case] pots: Pots,
    #[case] expected: [(usize, u64); 4],
) {
    let kitchen = Kitchen::new();
    let pot = pots.make(&kitchen, &EGGS);
    sleep(ms(1000)).await;
    let hint = STAGE1.hint("serve the four eggs, then end");
    let served_eggs = kitchen.serve(pots.call(), pot, &hint).await;
    let hint = STAGE1.hint(
        "a stream does nothing until it is polled: the pots take their first eggs when the \
         consumer first asks (1000 ms), not when the stream is made. Return an adapter \
         (buffered, buffer_unordered), never a task that boils ahead",
    );
    check_seq(
        &format!("eggs served by {}, first polled at 1000 ms", pots.call()),
        &served_eggs,
        &served(&expected),
        &hint,
    );
    let laid = kitchen.laid();
    assert_schedule(
        "when the pots took the first two eggs",
        &laid[..laid.len().min(2)],
        &[ms(1000), ms(1000)],
        &hint,
    );
}

//   each way of boiling under a 3000 ms timeout: the eggs boiling at 3000 ms are dropped then,
//   the eggs not taken yet are never laid, and nothing boils on (watched until 23000 ms).
//
//                    0 ms            2000       3000: timeout
//   one_by_one:      |== egg 1 =================x      eggs 2, 3, 4: never laid
//   all_at_once:     |== eggs 1, 3, 4 ==========x
//                    |== egg 2 ======|
//   laid order:      |== egg 1 =================x      eggs 3, 4: never laid
//                    |== egg 2 ======| (waits)
//   as ready:        |== egg 1 =================x      egg 4: never laid
//                    |== egg 2 ======|== egg 3 =x

#[kata_harness::test]
#[case::one_by_one(Way::OneByOne, [dropped(0, 3000), never_laid(), never_laid(), never_laid()])]
#[case::all_at_once(
    Way::AllAtOnce,
    [dropped(0, 3000), boiled(0, 2000), dropped(0, 3000), dropped(0, 3000)]
)]
#[case::two_pots_in_laid_order(
    Way::TwoPotsInLaidOrder,
    [dropped(0, 3000), boiled(0, 2000), never_laid(), never_laid()]
)]
#[case::two_pots_as_ready(
    Way::TwoPotsAsReady,
    [dropped(0, 3000), boiled(0, 2000), dropped(2000, 3000), never_laid()]
)]
async fn stage1_a_timeout_drops_the_eggs_boiling_at_its_instant(
    #[case] way: Way,
    #[case] lives: [Life; 4],
) {
    let kitchen = Kitchen::new();
    let baseline = TaskBaseline::capture();
    let tasks_while_boiling = async {
        sleep(ms(1000)).await;
        alive_tasks()
    };
    let (result, tasks) = tokio::join!(
        timeout(ms(3000), way.boil(&kitchen, &EGGS)),
        tasks_while_boiling
    );
    check(
        &format!("{} under a 3000 ms timeout", way.call()),
        result.is_err(),
        format_args!("finished at {:?} with {result:?}", At(kitchen.now())),
        "still boiling when the timeout fires at 3000 ms",
        &STAGE1.hint("none of the four ways can boil these eggs in 3000 ms"),
    );
    check_eq(
        &format!("tokio tasks alive 1000 ms into {}", way.call()),
        tasks,
        baseline.alive(),
        &STAGE1.hint(
            "boil the eggs in the task that awaits them: StreamExt and join_all poll futures \
             themselves. A task per egg (tokio::spawn, JoinSet) is not needed, and a spawned \
             egg is not stopped by dropping its handle",
        ),
    );
    // Long enough for any egg left boiling to finish, and be seen finishing.
    sleep(ms(20_000)).await;
    let hint = STAGE1.hint(
        "when the timeout drops the future, the eggs it holds must be dropped at that instant \
         (3000 ms), and the eggs it has not taken yet must stay in the boiler: in Rust dropping \
         a future cancels it, so do not spawn, and do not take eggs you are not about to boil",
    );
    for (number, life) in lives.into_iter().enumerate() {
        kitchen.check_life(number + 1, EGGS[number], life, &hint);
    }
    baseline
        .assert_back("tokio tasks after the timeout", Duration::ZERO, &hint)
        .await;
}

// ---------------------------------------------------------------------------------------------
// Stage 2: a download generator over a fake web (every URL answers 200 after 1000 ms unless
// the test routes it otherwise).
//
//   download(&web, [a, b, c]), collected:
//              0 ms       1000       2000       3000
//   GET a:     |==========|
//   GET b:                |==========|
//   GET c:                           |==========|
//   items:                a          b          c

const URLS: [&str; 3] = ["a.example", "b.example", "c.example"];

#[kata_harness::test]
async fn stage2_download_yields_each_response_in_url_order() {
    let web = FakeWeb::new();
    let hint = STAGE2.hint("the download ends after the last URL: unfold ends on None");
    let timed = download(&web, URLS)
        .map(|item| (web.now(), item))
        .collect::<Vec<_>>();
    let items: Vec<(Duration, Fetched)> =
        completes_within("download(&web, [a, b, c])", timed, PATIENCE, &hint).await;
    let (times, items): (Vec<Duration>, Vec<Fetched>) = items.into_iter().unzip();
    check_seq(
        "items of download(&web, [a, b, c])",
        &items,
        &URLS.map(|url| response(url, 200)),
        &STAGE2.hint("yield what fetch gives for each URL, as it is, in URL order"),
    );
    let hint = STAGE2.hint(
        "fetch one URL, yield its response, then fetch the next: each URL is requested when \
         the one before it has answered",
    );
    assert_schedule(
        "requests",
        &web.request_times(),
        &[ms(0), ms(1000), ms(2000)],
        &hint,
    );
    assert_schedule("items", &times, &[ms(1000), ms(2000), ms(3000)], &hint);
}

#[kata_harness::test]
async fn stage2_nothing_is_requested_before_the_first_item_is_asked_for() {
    let web = FakeWeb::new();
    let downloads = download(&web, URLS);
    sleep(ms(1000)).await;
    let hint = STAGE2.hint("the download ends after the last URL");
    let items = completes_within(
        "the download",
        downloads.collect::<Vec<_>>(),
        PATIENCE,
        &hint,
    )
    .await;
    check_eq("items of download(&web, [a, b, c])", items.len(), 3, &hint);
    assert_schedule(
        "requests of a download first asked for an item at 1000 ms",
        &web.request_times(),
        &[ms(1000), ms(2000), ms(3000)],
        &STAGE2.hint(
            "a stream does nothing until polled: request the first URL when the consumer first \
             asks, not when download() is called (stream::unfold makes the fetch's future \
             only then)",
        ),
    );
}

//   a consumer that takes 500 ms over each item:
//              0 ms     1000   1500     2500   3000     4000
//   GET a:     |========|
//   consumer:           |~~~~~~|
//   GET b:                     |========|
//   consumer:                           |~~~~~~|
//   GET c:                                     |========|

#[kata_harness::test]
async fn stage2_a_slow_consumer_moves_the_requests() {
    let web = FakeWeb::new();
    let consumer = async {
        let mut downloads = pin!(download(&web, URLS));
        let mut arrived = Vec::new();
        while let Some(item) = downloads.next().await {
            arrived.push((web.now(), item));
            sleep(ms(500)).await;
        }
        arrived
    };
    let hint = STAGE2.hint("the download ends after the last URL");
    let arrived =
        completes_within("a slow consumer of the download", consumer, PATIENCE, &hint).await;
    assert_schedule(
        "requests of a download whose consumer takes 500 ms over each item",
        &web.request_times(),
        &[ms(0), ms(1500), ms(3000)],
        &STAGE2.hint(
            "request the next URL only when the consumer asks for the next item: no \
             prefetching (no buffered(n), no task that fetches ahead into a channel). The \
             consumer's pace is the download's pace: that is backpressure",
        ),
    );
    let times: Vec<Duration> = arrived.iter().map(|(at, _)| *at).collect();
    assert_schedule(
        "items",
        &times,
        &[ms(1000), ms(2500), ms(4000)],
        &STAGE2.hint("each item comes 1000 ms after its request"),
    );
}

#[kata_harness::test]
async fn stage2_take_two_never_requests_the_third_url() {
    let web = FakeWeb::new();
    let baseline = TaskBaseline::capture();
    let hint = STAGE2.hint("take(2) ends after the second item");
    let first_two = download(&web, URLS).take(2).collect::<Vec<_>>();
    let items = completes_within("download(..).take(2)", first_two, PATIENCE, &hint).await;
    check_seq(
        "items of download(&web, [a, b, c]).take(2)",
        &items,
        &URLS[..2]
            .iter()
            .map(|url| response(url, 200))
            .collect::<Vec<_>>(),
        &hint,
    );
    sleep(ms(10_000)).await;
    let hint = STAGE2.hint(
        "nobody asked for a third item, so c.example must never be requested: fetch a URL \
         inside the future that makes the item, not ahead of it",
    );
    check_seq(
        "URLs requested by download(..).take(2), watched for 10 s more",
        &web.requested(),
        &["a.example", "b.example"].map(String::from),
        &hint,
    );
    baseline
        .assert_back("tokio tasks after the download", Duration::ZERO, &hint)
        .await;
}

//   timeout(1500 ms, download(&web, [a, b, c]).collect()):
//              0 ms       1000   1500: dropped
//   GET a:     |==========|
//   GET b:                |======x
//   GET c:     never requested

#[kata_harness::test]
async fn stage2_dropping_the_download_cancels_the_request_in_flight() {
    let web = FakeWeb::new();
    let baseline = TaskBaseline::capture();
    let result = timeout(ms(1500), download(&web, URLS).collect::<Vec<_>>()).await;
    check(
        "download(&web, [a, b, c]) under a 1500 ms timeout",
        result.is_err(),
        format_args!("finished with {result:?}"),
        "still downloading at 1500 ms",
        &STAGE2.hint("three URLs of 1000 ms each, one at a time, take 3000 ms"),
    );
    sleep(ms(10_000)).await;
    let hint = STAGE2.hint(
        "dropping the stream drops the fetch in flight, at that instant: keep the request in \
         the stream's own future (unfold), never in a spawned task",
    );
    let life = web.life("b.example");
    let expected = dropped(1000, 1500);
    check(
        "the request for b.example: when it started, finished, was dropped",
        life == expected,
        life,
        expected,
        &hint,
    );
    check_seq(
        "URLs requested",
        &web.requested(),
        &["a.example", "b.example"].map(String::from),
        &hint,
    );
    baseline
        .assert_back("tokio tasks after the timeout", Duration::ZERO, &hint)
        .await;
}

#[kata_harness::test]
async fn stage2_a_fetch_error_is_an_item_and_the_download_goes_on() {
    let web = FakeWeb::new().route("b.example", 1000, Answer::Unreachable);
    let hint = STAGE2.hint("the download ends after the last URL");
    let timed = download(&web, URLS)
        .map(|item| (web.now(), item))
        .collect::<Vec<_>>();
    let items = completes_within("download(&web, [a, b, c])", timed, PATIENCE, &hint).await;
    let (times, items): (Vec<Duration>, Vec<Fetched>) = items.into_iter().unzip();
    check_seq(
        "items of a download whose second URL does not answer",
        &items,
        &[
            response("a.example", 200),
            unreachable("b.example"),
            response("c.example", 200),
        ],
        &STAGE2.hint(
            "a fetch error is an item like any other (the stream's items are Results): yield \
             it, and go on to the next URL. Do not end the stream at an error, and do not skip \
             it",
        ),
    );
    assert_schedule(
        "items",
        &times,
        &[ms(1000), ms(2000), ms(3000)],
        &STAGE2.hint("one URL at a time, 1000 ms each, the error too"),
    );
}

//   failures(&web, [a 200, b 404, c unreachable, d 500, e 200, f 301]), answering after 100, 300,
//   200, 400, 100 and 300 ms: one request at a time, so they end at 100, 400, 600, 1000, 1100
//   and 1400 ms.

#[kata_harness::test]
async fn stage2_failures_keeps_every_answer_but_200_in_url_order() {
    let web = FakeWeb::new()
        .route("a.example", 100, Answer::Status(200))
        .route("b.example", 300, Answer::Status(404))
        .route("c.example", 200, Answer::Unreachable)
        .route("d.example", 400, Answer::Status(500))
        .route("e.example", 100, Answer::Status(200))
        .route("f.example", 300, Answer::Status(301));
    let urls = ["a", "b", "c", "d", "e", "f"].map(|name| format!("{name}.example"));
    let hint = STAGE2.hint("failures returns once the download has ended");
    let found = completes_within("failures(..)", failures(&web, urls), PATIENCE, &hint).await;
    check_seq(
        "failures(&web, [a 200, b 404, c unreachable, d 500, e 200, f 301])",
        &found,
        &[
            response("b.example", 404),
            unreachable("c.example"),
            response("d.example", 500),
            response("f.example", 301),
        ],
        &STAGE2.hint(
            "keep every item that is not a 200 response: every other status (a 301 too) and \
             fetch errors alike, in URL order (download(..).filter(..), which keeps the order of the download)",
        ),
    );
    let hint = STAGE2.hint(
        "failures reads the download stream, one URL at a time: the next request starts when \
         the one before it has answered",
    );
    assert_schedule(
        "requests",
        &web.request_times(),
        &[ms(0), ms(100), ms(400), ms(600), ms(1000), ms(1100)],
        &hint,
    );
    assert_elapsed("failures(..) returned", web.now(), ms(1400), &hint);
}

#[kata_harness::test]
async fn stage2_tally_counts_every_kind_of_answer() {
    let web = QuietWeb::default();
    let hint = STAGE2.hint("tally returns once the download has ended");
    let counted = completes_within("tally(..)", tally(&web, farm_urls(100)), PATIENCE, &hint).await;
    check_eq(
        "tally of 100 URLs: 10 answer 404, 10 answer 301, 10 do not answer",
        counted,
        Tally {
            ok: 70,
            failed: 20,
            errors: 10,
        },
        &STAGE2.hint(
            "a 200 response is ok, a response with any other status (301 too) failed, a fetch \
             error is an error",
        ),
    );
    check_eq(
        "URLs requested",
        web.requests(),
        100,
        &STAGE2.hint("request every URL once"),
    );
    let nothing = tally(&web, farm_urls(0)).await;
    check_eq(
        "tally of no URLs",
        nothing,
        Tally::default(),
        &STAGE2.hint("no URL, no count"),
    );
}

#[kata_harness::test]
async fn stage2_tally_takes_no_more_memory_for_10000_urls_than_for_1000() {
    let web = QuietWeb::default();
    // Warm up: the first run may build things that stay (tokio's and the allocator's own).
    tally(&web, farm_urls(10)).await;
    let (small, small_heap) = heap::measure_async(tally(&web, farm_urls(1_000))).await;
    let (large, large_heap) = heap::measure_async(tally(&web, farm_urls(10_000))).await;
    let counts = STAGE2.hint("a 200 response is ok, another status failed, a fetch error an error");
    check_eq(
        "tally of 1,000 URLs",
        small,
        Tally {
            ok: 700,
            failed: 200,
            errors: 100,
        },
        &counts,
    );
    check_eq(
        "tally of 10,000 URLs",
        large,
        Tally {
            ok: 7000,
            failed: 2000,
            errors: 1000,
        },
        &counts,
    );
    assert_peak_independent(
        "tally(..) over URLs made one at a time",
        ("1,000 URLs", small_heap),
        ("10,000 URLs", large_heap),
        16 * 1024,
        &STAGE2.hint(
            "count each item as it comes (StreamExt::fold) and let it go: collecting the \
             download, or the URLs, keeps all of them in memory at once",
        ),
    );
}

// ---------------------------------------------------------------------------------------------
// Stage 3: the egg boiler by hand: EggBoiler::new(hen) over any Unpin stream of boil times.
//
//   let eggs: Vec<_> = EggBoiler::new(stream::iter(boil times)).collect().await;  // at 0 ms
//   sleep(1000 ms);  join_all(eggs).await;  // they boil from 1000 ms, as in stage 1

#[kata_harness::test]
async fn stage3_eggs_come_out_numbered_and_boil_only_when_awaited() {
    let kitchen = Kitchen::new();
    let hint = STAGE3
        .hint("when the hen has no more boil times (Ready(None)), the boiler returns Ready(None)");
    let taking = EggBoiler::new(stream::iter(EGGS.map(ms))).collect::<Vec<_>>();
    let eggs = completes_within("taking every egg out of EggBoiler", taking, PATIENCE, &hint).await;
    let hint = STAGE3.hint(
        "poll_next hands out an egg for each boil time the hen lays: Box::pin(boil(..)), not \
         yet boiling",
    );
    assert_elapsed(
        "taking four eggs out of the boiler",
        kitchen.now(),
        ms(0),
        &hint,
    );
    check_eq("eggs handed out for 4 boil times", eggs.len(), 4, &hint);

    sleep(ms(1000)).await;
    let watched = eggs
        .into_iter()
        .enumerate()
        .map(|(index, egg)| kitchen.watch(index + 1, egg));
    let hint = STAGE3.hint("each egg is done once its boil time has passed");
    let boiled_eggs = completes_within(
        "the eggs, awaited together",
        join_all(watched),
        PATIENCE,
        &hint,
    )
    .await;
    check_eq(
        "what the eggs give, in the order they were handed out",
        boiled_eggs,
        eggs_numbered(&[1, 2, 3, 4]),
        &STAGE3.hint("count the eggs laid in a field of the boiler, and number them from 1"),
    );
    let hint = STAGE3.hint(
        "an egg boils from when it is awaited (1000 ms), for the boil time the hen laid: make it \
         with stage 1's boil(number, boil_time)",
    );
    for (index, boil_ms) in EGGS.into_iter().enumerate() {
        kitchen.check_life(index + 1, boil_ms, boiled(1000, 1000 + boil_ms), &hint);
    }
}

//   a hen that lays at 1000, 2500 and 3000 ms (boil times 500, 300, 100 ms), each egg awaited
//   as it comes (then):
//              0 ms     1000  1500     2500 2800 3000 3100
//   hen:       Pending  lays           lays      lays, then done
//   eggs:               |=====|        |====|    |====|
//   served:                   1             2         3

#[kata_harness::test]
async fn stage3_the_boiler_waits_for_a_hen_still_laying() {
    let kitchen = Kitchen::new();
    let hen = laying_hen(&[(1000, 500), (2500, 300), (3000, 100)]);
    let pot = EggBoiler::new(hen).then(|egg| egg);
    let hint = STAGE3.hint(
        "when the hen is Pending, return Pending, having polled her with the same cx: she \
         keeps its waker and wakes the task when she lays. A waker of your own, or none, and \
         nobody wakes the task again",
    );
    let served_eggs = kitchen
        .serve("EggBoiler over a laying hen", pot, &hint)
        .await;
    check_seq(
        "eggs of a hen laying at 1000, 2500, 3000 ms, each boiled as it comes",
        &served_eggs,
        &served(&[(1, 1500), (2, 2800), (3, 3100)]),
        &STAGE3.hint(
            "Pending is not the end: return Ready(None) only when the hen does. Number an egg \
             when she lays it, not at every poll",
        ),
    );
}

//   EggBoiler over a hen who lays at 1000 ms, polled by hand with a waker that counts:
//   0 ms: Pending, not woken yet ...... 1000 ms: the hen lays and wakes it, once ... poll: an egg

#[kata_harness::test]
async fn stage3_pending_leaves_the_wake_to_the_hen() {
    let mut boiler = EggBoiler::new(laying_hen(&[(1000, 500)]));
    let counting = CountingWaker::new();
    let waker = counting.waker();
    let mut cx = Context::from_waker(&waker);
    let first = boiler.poll_next_unpin(&mut cx);
    check(
        "the first poll of EggBoiler, while the hen has not laid yet",
        first.is_pending(),
        format_args!("{}", describe(&first)),
        "Pending",
        &STAGE3.hint(
            "the hen said Pending: so does the boiler. Ready(None) would end the stream while \
             she is still laying",
        ),
    );
    check_eq(
        "wakes of the waker right after a Pending poll",
        counting.wakes(),
        0,
        &STAGE3.hint(
            "do not wake the task yourself when you return Pending: it would be polled again at \
             once, and again, a busy loop that never lets time pass. The hen wakes it when she \
             lays",
        ),
    );
    sleep(ms(1500)).await;
    check_eq(
        "wakes of the waker once the hen has laid (at 1000 ms)",
        counting.wakes(),
        1,
        &STAGE3.hint(
            "poll the hen with the cx poll_next was given: she keeps its waker and wakes it when \
             she lays. Polled with a waker of your own, she wakes that one, and the task that \
             polled the boiler sleeps for ever",
        ),
    );
    let second = boiler.poll_next_unpin(&mut cx);
    check(
        "the poll of EggBoiler after the wake",
        matches!(second, Poll::Ready(Some(_))),
        format_args!("{}", describe(&second)),
        "an egg (Ready(Some(..)))",
        &STAGE3.hint("the hen has laid: hand out an egg for her boil time"),
    );
}

/// A poll's result as a report shows it.
fn describe<T>(poll: &Poll<Option<T>>) -> &'static str {
    match poll {
        Poll::Ready(Some(_)) => "an egg (Ready(Some(..)))",
        Poll::Ready(None) => "the end (Ready(None))",
        Poll::Pending => "Pending",
    }
}

//   EggBoiler over a forgetful hen with two eggs, polled six times by hand:
//   egg, egg, end, end, end, end; and the hen is never asked again after she said "done"
//   (asked again, she would lay both eggs again).

#[kata_harness::test]
async fn stage3_after_the_end_every_poll_says_the_end() {
    let hen = ForgetfulHen::new(&[5000, 2000]);
    let asked_after_done = hen.asked_after_done();
    let mut boiler = EggBoiler::new(hen);
    let waker = CountingWaker::new().waker();
    let mut cx = Context::from_waker(&waker);
    let polls: Vec<&str> = (0..6)
        .map(|_| match boiler.poll_next_unpin(&mut cx) {
            Poll::Ready(Some(_egg)) => "egg",
            Poll::Ready(None) => "end",
            Poll::Pending => "Pending",
        })
        .collect();
    let hint = STAGE3.hint(
        "once the hen has said Ready(None), remember it in a field and return Ready(None) at \
         once on every later poll, without asking her again: a stream polled after its end may \
         do anything (this hen starts laying again; unfold panics)",
    );
    check_seq(
        "six polls of EggBoiler over a hen with two eggs",
        &polls,
        &["egg", "egg", "end", "end", "end", "end"],
        &hint,
    );
    check_eq(
        "times the hen was asked for an egg after she said she was done",
        asked_after_done.load(Ordering::SeqCst),
        0,
        &hint,
    );
}

#[kata_harness::test]
async fn stage3_is_terminated_once_the_end_has_been_returned() {
    let mut boiler = EggBoiler::new(ForgetfulHen::new(&[5000, 2000]));
    let waker = CountingWaker::new().waker();
    let mut cx = Context::from_waker(&waker);
    let mut terminated = vec![boiler.is_terminated()];
    for _ in 0..4 {
        let _ = boiler.poll_next_unpin(&mut cx);
        terminated.push(boiler.is_terminated());
    }
    check_seq(
        "is_terminated() before any poll, then after each of four polls (egg, egg, end, end)",
        &terminated,
        &[false, false, false, true, true],
        &STAGE3.hint(
            "is_terminated is true once poll_next has returned Ready(None), and not before: \
             after the last egg the boiler does not know yet that the hen is done",
        ),
    );
}

#[kata_harness::test]
async fn stage3_size_hint_counts_the_eggs_still_to_come() {
    let mut boiler = EggBoiler::new(stream::iter(EGGS.map(ms)));
    let waker = CountingWaker::new().waker();
    let mut cx = Context::from_waker(&waker);
    let mut hints = vec![boiler.size_hint()];
    for _ in 0..5 {
        let _ = boiler.poll_next_unpin(&mut cx);
        hints.push(boiler.size_hint());
    }
    check_seq(
        "size_hint() of EggBoiler over 4 boil times, before any poll, then after each poll",
        &hints,
        &[4, 3, 2, 1, 0, 0].map(|left| (left, Some(left))),
        &STAGE3.hint(
            "one egg per boil time: the eggs still to come are the hen's boil times still to \
             come, so return the hen's own size_hint() (the default, (0, None), says nothing)",
        ),
    );
    let unknown = EggBoiler::new(laying_hen(&[(1000, 500)])).size_hint();
    check_eq(
        "size_hint() of EggBoiler over a hen who does not know how many eggs she will lay",
        unknown,
        (0, None),
        &STAGE3.hint("pass the hen's hint on as it is: do not promise more than she does"),
    );
}

#[kata_harness::test]
async fn stage3_size_hint_is_zero_after_the_end() {
    let mut boiler = EggBoiler::new(ForgetfulHen::new(&[5000, 2000]));
    let waker = CountingWaker::new().waker();
    let mut cx = Context::from_waker(&waker);
    for _ in 0..3 {
        let _ = boiler.poll_next_unpin(&mut cx);
    }
    check_eq(
        "size_hint() of EggBoiler once it has returned Ready(None)",
        boiler.size_hint(),
        (0, Some(0)),
        &STAGE3.hint(
            "once ended, the boiler hands out nothing more, whatever the hen says (this one \
             would lay again): return (0, Some(0))",
        ),
    );
}

//   EggBoiler::new(stream::iter([5000, 2000, 3500, 4000])).buffer_unordered(2): the hand-written
//   stream works with StreamExt like any other, and serves as stage 1's two_pots_as_ready:
//   egg 2 at 2000, 1 at 5000, 3 at 5500, 4 at 9000.

#[kata_harness::test]
async fn stage3_the_hand_written_boiler_works_with_the_pots() {
    let kitchen = Kitchen::new();
    let pot = EggBoiler::new(stream::iter(EGGS.map(ms))).buffer_unordered(2);
    let hint = STAGE3.hint("the boiler must end after the hen's last boil time");
    let served_eggs = kitchen
        .serve("EggBoiler(..).buffer_unordered(2)", pot, &hint)
        .await;
    check_seq(
        "eggs served by EggBoiler(..).buffer_unordered(2)",
        &served_eggs,
        &served(&[(2, 2000), (1, 5000), (3, 5500), (4, 9000)]),
        &STAGE3.hint(
            "each egg boils for its own boil time from when the pot first polls it, numbered \
             from 1 in laid order",
        ),
    );
}
