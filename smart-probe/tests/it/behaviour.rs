//! The probe against the in-process server: coordinated omission, rate, kept-alive connections,
//! outcomes, overload, warm-up, the guardrail, progress, closed loop and round-robin.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use smart_core::experiment::Percent;
use smart_probe::{Abort, BlockPlan, GuardConfig, Load, Outcome, Probe, Progress};
use tokio::time::Instant;

use crate::server::{Behaviour, TestServer};
use crate::{builder, run, run_plan, secs, target};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stall_shows_in_the_latencies_of_the_requests_that_waited() {
    // The test: 200 req/s for 10 s; once, the server freezes every response for
    // 500 ms. Timed from the intended send, the ~100 requests due during the freeze wait
    // between 500 and 0 ms, so about 50 are above 250 ms and p99 is about 400 ms. A probe that
    // timed from the actual send (or stopped sending during the stall) would see only a few.
    let server = TestServer::start(Behaviour::default()).await;
    let freeze = async {
        tokio::time::sleep(secs(5.0)).await;
        server.set(|b| b.frozen_until = Some(Instant::now() + secs(0.5)));
    };
    let (result, ()) = tokio::join!(
        run(
            builder(&target(&server.url(), 200.0, 2_000)),
            Duration::ZERO,
            secs(10.0)
        ),
        freeze
    );
    assert_eq!(result.counts.total(), 2_000, "{:?}", result.counts);
    assert_eq!(result.counts.ok, 2_000, "{:?}", result.counts);
    let slow = result
        .samples
        .kept()
        .iter()
        .filter(|s| s.latency_us() > 250_000)
        .count();
    let latency = result.latency.unwrap();
    assert!(slow >= 40, "only {slow} samples above 250 ms");
    assert!(latency.p99_us >= 350_000, "p99 {} µs", latency.p99_us);
    assert!(latency.max_us >= 450_000, "max {} µs", latency.max_us);
    assert!(latency.p50_us < 50_000, "p50 {} µs", latency.p50_us);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_achieved_rate_is_the_requested_one_even_when_the_server_is_slow() {
    // Each answer takes 100 ms; 200 req/s needs ~20 requests in flight. An open loop keeps the
    // rate; a closed loop with a handful of connections would reach only tens per second.
    let server = TestServer::start(Behaviour {
        delay: secs(0.1),
        ..Behaviour::default()
    })
    .await;
    let result = run(
        builder(&target(&server.url(), 200.0, 2_000)),
        Duration::ZERO,
        secs(2.0),
    )
    .await;
    assert_eq!(result.sent, 400, "{:?}", result.counts);
    let off = (result.achieved_rate_per_s - 200.0).abs() / 200.0;
    assert!(off < 0.05, "achieved {} req/s", result.achieved_rate_per_s);
    assert_eq!(result.counts.ok, 400);
    let latency = result.latency.unwrap();
    assert!(latency.p50_us >= 100_000, "p50 {} µs", latency.p50_us);
    assert_eq!(server.requests(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_loop_keeps_its_connections_alive_across_blocks() {
    // 200 req/s of fast answers need a connection or two at a time; they are put back and
    // reused, within a block and by the next block of the same probe.
    let server = TestServer::start(Behaviour::default()).await;
    let probe = Probe::new(
        builder(&target(&server.url(), 200.0, 2_000))
            .build()
            .unwrap(),
    )
    .unwrap();
    for _ in 0..2 {
        let result = probe
            .run_block(BlockPlan::measure(secs(1.0)), &smart_probe::NoProgress)
            .await
            .unwrap();
        assert_eq!(result.counts.ok, 200, "{:?}", result.counts);
    }
    assert_eq!(server.requests(), 400);
    assert!(
        server.connections() <= 20,
        "{} connections for 400 requests",
        server.connections()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_outcome_is_classified() {
    let slow = TestServer::start(Behaviour {
        delay: secs(0.3),
        ..Behaviour::default()
    })
    .await;
    let failing = TestServer::start(Behaviour {
        status: 503,
        ..Behaviour::default()
    })
    .await;
    let refused = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/", listener.local_addr().unwrap())
    };
    let check = async |url: String, outcome: Outcome| {
        let result = run(builder(&target(&url, 40.0, 100)), Duration::ZERO, secs(0.5)).await;
        assert_eq!(result.counts.total(), 20, "{url}: {:?}", result.counts);
        assert_eq!(result.counts.get(outcome), 20, "{url}: {:?}", result.counts);
        assert_eq!(result.error_rate_pct, 100.0);
        assert!(result.latency.is_none());
        assert!(result.samples.kept().iter().all(|s| s.outcome() == outcome));
        result
    };
    let timeouts = check(slow.url(), Outcome::Timeout).await;
    assert!(
        timeouts
            .samples
            .kept()
            .iter()
            .all(|s| s.latency_us() >= 100_000)
    );
    let bad = check(failing.url(), Outcome::BadStatus).await;
    assert_eq!(bad.status_counts.get(&503), Some(&20));
    check(refused, Outcome::Connect).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_refused_by_the_in_flight_cap_are_counted_as_overload() {
    let server = TestServer::start(Behaviour {
        delay: secs(2.0),
        ..Behaviour::default()
    })
    .await;
    let config = builder(&target(&server.url(), 100.0, 5_000)).max_in_flight(10);
    let probe = Probe::new(config.build().unwrap()).unwrap();
    let plan = BlockPlan::measure(secs(1.0));
    // Only the cap's 10 requests go out; the other 90 due in the second are overloads. The
    // block then waits for the 10 to be answered.
    let result = probe
        .run_block(plan, &smart_probe::NoProgress)
        .await
        .unwrap();
    assert_eq!(result.counts.total(), 100, "{:?}", result.counts);
    assert_eq!(result.sent, 10);
    assert_eq!(result.counts.ok, 10);
    assert_eq!(result.counts.overload, 90);
    assert_eq!(server.requests(), 10);
    let overloads = result
        .samples
        .kept()
        .iter()
        .filter(|s| s.outcome() == Outcome::Overload);
    assert!(overloads.clone().all(|s| s.latency_us() == 0));
    assert_eq!(overloads.count(), 90);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_warm_up_is_sent_but_not_recorded_and_progress_is_reported() {
    // 503 for the first 0.9 s: all of it falls in the 1 s warm-up, so nothing of it is recorded.
    let server = TestServer::start(Behaviour {
        unavailable_until: Some(Instant::now() + secs(0.9)),
        ..Behaviour::default()
    })
    .await;
    let probe = Probe::new(
        builder(&target(&server.url(), 100.0, 2_000))
            .build()
            .unwrap(),
    )
    .unwrap();
    let seen = Arc::new(Mutex::new(Vec::<Progress>::new()));
    let sink = {
        let seen = Arc::clone(&seen);
        move |p: &Progress| seen.lock().unwrap().push(p.clone())
    };
    let plan = BlockPlan {
        warmup: secs(1.0),
        ..BlockPlan::measure(secs(1.0))
    };
    let result = probe.run_block(plan, &sink).await.unwrap();
    assert_eq!(result.counts.total(), 100, "{:?}", result.counts);
    assert_eq!(result.counts.ok, 100, "{:?}", result.counts);
    assert_eq!(result.warmup_s, 1.0);
    assert!(result.samples.kept().iter().all(|s| s.at_ms() < 1_000));
    assert!(server.requests() >= 200);
    let seen = seen.lock().unwrap();
    assert!(seen.len() >= 3, "{seen:?}");
    assert!(seen.first().unwrap().warming_up);
    assert_eq!(seen.first().unwrap().samples, 0);
    let last = seen.last().unwrap();
    assert!(!last.warming_up);
    assert_eq!((last.samples, last.errors), (100, 0));
    assert!(last.p50_us.is_some());
    let mid = &seen[seen.len() / 2];
    assert!((50.0..=150.0).contains(&mid.current_rate_per_s), "{mid:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_stops_a_block_early_on_errors() {
    let server = TestServer::start(Behaviour {
        status: 503,
        ..Behaviour::default()
    })
    .await;
    let guard = GuardConfig::new(secs(1.0), Percent::try_from(20.0).unwrap()).unwrap();
    let started = std::time::Instant::now();
    let plan = BlockPlan {
        warmup: secs(0.5),
        measure: secs(20.0),
        guard: Some(guard),
    };
    let result = run_plan(builder(&target(&server.url(), 100.0, 2_000)), plan).await;
    assert!(
        started.elapsed() < secs(5.0),
        "took {:?}",
        started.elapsed()
    );
    match result.abort {
        Some(Abort::ErrorRate {
            error_rate_pct,
            threshold_pct,
            ..
        }) => assert_eq!((error_rate_pct, threshold_pct), (100.0, 20.0)),
        other => panic!("{other:?}"),
    }
    assert!(result.duration_s < 4.0, "{}", result.duration_s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_stops_a_block_early_when_the_target_stops_answering() {
    let server = TestServer::start(Behaviour::default()).await;
    let guard = GuardConfig::new(secs(1.0), Percent::try_from(20.0).unwrap()).unwrap();
    let freeze = async {
        tokio::time::sleep(secs(0.5)).await;
        server.set(|b| b.frozen_until = Some(Instant::now() + secs(60.0)));
    };
    let started = std::time::Instant::now();
    let (result, ()) = tokio::join!(
        run_plan(
            builder(&target(&server.url(), 50.0, 30_000)),
            BlockPlan {
                guard: Some(guard),
                ..BlockPlan::measure(secs(20.0))
            },
        ),
        freeze
    );
    assert!(
        started.elapsed() < secs(5.0),
        "took {:?}",
        started.elapsed()
    );
    match result.abort {
        Some(Abort::NoAnswer { window_s, at_s }) => {
            assert_eq!(window_s, 1.0);
            assert!((1.4..4.0).contains(&at_s), "{at_s}");
        }
        other => panic!("{other:?}"),
    }
    assert!(result.counts.ok >= 20, "{:?}", result.counts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_loop_keeps_its_connections_busy_and_urls_go_round_robin() {
    let a = TestServer::start(Behaviour::default()).await;
    let b = TestServer::start(Behaviour::default()).await;
    // One plain-HTTP host: each worker owns a connection (the lean path).
    let result = run(
        builder(&target(&a.url(), 1.0, 2_000)).load(Load::Closed { connections: 4 }),
        Duration::ZERO,
        secs(0.5),
    )
    .await;
    assert!(result.counts.ok >= 100, "{:?}", result.counts);
    assert_eq!(result.counts.errors(), 0);
    assert_eq!(a.requests(), result.counts.ok);
    let refused = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/", listener.local_addr().unwrap())
    };
    let result = run(
        builder(&target(&refused, 1.0, 2_000)).load(Load::Closed { connections: 2 }),
        Duration::ZERO,
        secs(0.2),
    )
    .await;
    assert!(result.counts.connect > 0, "{:?}", result.counts);
    assert_eq!(result.counts.connect, result.counts.total());

    // Two hosts: reqwest's pool, URLs round-robin across the workers.
    let a_before = a.requests();
    let mut t = target(&a.url(), 100.0, 2_000);
    t.urls.push(b.url());
    let result = run(
        builder(&t).load(Load::Closed { connections: 4 }),
        Duration::ZERO,
        secs(0.5),
    )
    .await;
    assert!(result.counts.ok >= 100, "{:?}", result.counts);
    assert_eq!(result.counts.errors(), 0);
    assert_eq!(result.load, Load::Closed { connections: 4 });
    let (ra, rb) = (a.requests() - a_before, b.requests());
    assert!(ra.abs_diff(rb) <= 4, "{ra} vs {rb}");

    // The open loop too: 50 requests, 25 to each.
    let result = run(builder(&t), Duration::ZERO, secs(0.5)).await;
    assert_eq!(result.counts.ok, 50);
    assert_eq!((a.requests() - a_before - ra, b.requests() - rb), (25, 25));
}
