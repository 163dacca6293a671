//! The probe against a real nginx on loopback, reloaded under load.

use std::process::Command;
use std::time::Duration;

use smart_probe::{BlockPlan, Load, NoProgress, Probe};
use smart_testkit::{Nginx, require_tool};

use crate::{builder, secs, target};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_reloads_under_load_cost_at_most_a_couple_of_errors() {
    if !require_tool(
        "nginx",
        "nginx_reloads_under_load_cost_at_most_a_couple_of_errors",
    ) {
        return;
    }
    let nginx = Nginx::start("    location / { }").unwrap();
    std::fs::write(nginx.html_dir().join("1k.bin"), vec![b'x'; 1024]).unwrap();
    let url = nginx.url("/1k.bin");

    // Every reload makes the old workers close their kept-alive connections; the pool must
    // notice at once. Ten reloads in 6 s at 1,000 req/s.
    let probe = Probe::new(builder(&target(&url, 1000.0, 2_000)).build().unwrap()).unwrap();
    let reloads = reload_every(&nginx, Duration::from_millis(500), 10);
    let result = probe
        .run_block(BlockPlan::measure(secs(6.0)), &NoProgress)
        .await
        .unwrap();
    assert_eq!(reloads.await.unwrap(), 10);
    assert_eq!(result.counts.total(), 6_000, "{:?}", result.counts);
    assert!(
        result.counts.errors() <= 2,
        "{} errors over 10 reloads: {:?} (retried {})",
        result.counts.errors(),
        result.counts,
        result.retried
    );
    assert_eq!(
        result.status_counts.get(&200).copied(),
        Some(result.counts.ok)
    );
    let latency = result.latency.unwrap();
    assert!(latency.p50_us < 20_000, "p50 {} µs", latency.p50_us);

    // The closed loop's own connections recover the same way.
    let closed = builder(&target(&url, 1.0, 2_000)).load(Load::Closed { connections: 4 });
    let probe = Probe::new(closed.build().unwrap()).unwrap();
    let reloads = reload_every(&nginx, Duration::from_millis(300), 6);
    let result = probe
        .run_block(BlockPlan::measure(secs(2.0)), &NoProgress)
        .await
        .unwrap();
    assert_eq!(reloads.await.unwrap(), 6);
    assert!(result.counts.ok > 1_000, "{:?}", result.counts);
    assert!(
        result.counts.errors() <= 2,
        "{} errors over 6 reloads: {:?} (retried {})",
        result.counts.errors(),
        result.counts,
        result.retried
    );
}

/// Reloads `nginx` `times` times, `every` apart, on a blocking thread; yields how many worked.
fn reload_every(nginx: &Nginx, every: Duration, times: u32) -> tokio::task::JoinHandle<u32> {
    let reload = nginx.reload_argv();
    tokio::task::spawn_blocking(move || {
        let mut done = 0;
        for _ in 0..times {
            std::thread::sleep(every);
            let out = Command::new(&reload[0])
                .args(&reload[1..])
                .output()
                .unwrap();
            assert!(out.status.success(), "{reload:?}: {out:?}");
            done += 1;
        }
        done
    })
}
