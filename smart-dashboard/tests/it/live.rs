//! The live observer: `status.json` published every couple of seconds, pages re-rendered after
//! blocks and decisions at most every interval, always at the run's end, and a dashboard that
//! cannot be written never stops the run.

use std::fs;
use std::time::Duration;

use smart_core::engine::{
    Arm, BlockInfo, BlockKind, BlockMeasurement, Event, EventKind, LiveConfig, ObserverPort,
    RunEnd, RunReport,
};
use smart_dashboard::{Dashboard, LiveDashboard};

use crate::fixtures;

fn event(elapsed_s: f64, kind: EventKind<'_>) -> Event<'_> {
    Event {
        at: crate::render_time(),
        elapsed: Duration::from_secs_f64(elapsed_s),
        left: Duration::from_secs(600),
        kind,
    }
}

fn block() -> BlockInfo {
    BlockInfo {
        index: 1,
        kind: BlockKind::Test,
        variant: "v".to_owned(),
        variant_index: 1,
        arm: Arm::Baseline,
        arm_name: "baseline".to_owned(),
        cycle: 0,
        position: 0,
        block_in_variant: 1,
        blocks_in_variant: 4,
        warmup_s: 0.0,
        duration_s: 30.0,
        started: "2026-11-22T08:00:00.000Z".to_owned(),
    }
}

#[test]
fn pages_follow_the_run_throttled_and_status_every_two_seconds() {
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let specs = fixtures::standard(state.path());
    let mut live = LiveDashboard::with_interval(
        Dashboard::new(state.path(), out.path()),
        Duration::from_secs(5),
    );
    let index = out.path().join("index.html");
    let status = out.path().join("status.json");
    let (info, measurement) = (block(), BlockMeasurement::default());
    let finished = || EventKind::BlockFinished {
        block: &info,
        measurement: &measurement,
    };

    live.event(&event(0.0, EventKind::Tick)).unwrap();
    assert!(
        status.is_file() && !index.exists(),
        "a tick only publishes the status"
    );

    live.event(&event(1.0, finished())).unwrap();
    assert!(index.is_file(), "a finished block renders the pages");
    let first = fs::read_to_string(&index).unwrap();

    // The engine writes a new status; a block finishes too soon after the last render.
    let mut next = fixtures::running_status(&specs[2], 1, 7777);
    next.block = Some(4);
    fixtures::write_status(state.path(), &next);
    live.event(&event(2.0, finished())).unwrap();
    assert_eq!(
        fs::read_to_string(&index).unwrap(),
        first,
        "rendered again within 5 s"
    );
    assert_ne!(
        fs::read(&status).unwrap(),
        fs::read(state.path().join("status.json")).unwrap()
    );

    live.event(&event(3.5, EventKind::Tick)).unwrap();
    assert_eq!(
        fs::read(&status).unwrap(),
        fs::read(state.path().join("status.json")).unwrap(),
        "the status is published 2 s after the last time"
    );
    assert_eq!(fs::read_to_string(&index).unwrap(), first);

    live.event(&event(6.5, EventKind::Tick)).unwrap();
    let second = fs::read_to_string(&index).unwrap();
    assert!(
        second.contains("7.78 ms"),
        "the pending render ran once the interval passed"
    );

    next.live.as_mut().unwrap().p50_us = Some(1111);
    fixtures::write_status(state.path(), &next);
    let report = RunReport {
        run_id: specs[2].id(),
        experiment: specs[2].experiment.clone(),
        definition_hash: String::new(),
        seed: 0,
        started: String::new(),
        finished: String::new(),
        end: RunEnd::Completed,
        end_reason: None,
        live: LiveConfig::Original,
        decisions: Vec::new(),
    };
    live.event(&event(7.0, EventKind::RunFinished(&report)))
        .unwrap();
    assert!(
        fs::read_to_string(&index).unwrap().contains("1.11 ms"),
        "the run's end always renders"
    );
    assert!(live.take_error().is_none());
}

#[test]
fn a_dashboard_that_cannot_be_written_never_stops_the_run() {
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    fixtures::standard(state.path());
    let blocked = out.path().join("a-file");
    fs::write(&blocked, "not a dir").unwrap();
    let mut live = LiveDashboard::new(Dashboard::new(state.path(), &blocked));
    let (info, measurement) = (block(), BlockMeasurement::default());
    let result = live.event(&event(
        1.0,
        EventKind::BlockFinished {
            block: &info,
            measurement: &measurement,
        },
    ));
    assert!(result.is_ok());
    let err = live
        .take_error()
        .expect("the failure is kept for the caller");
    assert!(err.path().starts_with(&blocked), "{err}");
    assert!(live.take_error().is_none());
}
