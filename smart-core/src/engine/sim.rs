//! Simulated time for tests: a [`SimClock`] whose sleeps complete when [`block_on`] advances
//! virtual time, so an hour-long schedule runs in milliseconds and every run is deterministic.
//!
//! [`block_on`] polls the future until it is stuck, then jumps the clock to the earliest pending
//! sleep. Fakes of the other ports sleep on the same clock to take simulated time.
//!
//! ```
//! use std::time::Duration;
//! use smart_core::engine::ClockPort;
//! use smart_core::engine::sim::{SimClock, block_on};
//!
//! let clock = SimClock::new();
//! block_on(&clock, async {
//!     clock.sleep(Duration::from_secs(3600)).await;
//! });
//! assert_eq!(clock.monotonic(), Duration::from_secs(3600));
//! ```

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::future::Future;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::ports::ClockPort;

/// The wall-clock time a fresh [`SimClock`] starts at: 2026-01-01T00:00:00Z.
pub const SIM_EPOCH_SECS: u64 = 1_767_225_600;

/// A simulated clock; clones share the same time.
#[derive(Debug, Clone, Default)]
pub struct SimClock {
    state: Rc<RefCell<State>>,
}

#[derive(Debug, Default)]
struct State {
    now: Duration,
    next_id: u64,
    /// Deadlines in order; an id no longer in `wakers` was dropped and is skipped.
    heap: BinaryHeap<Reverse<(Duration, u64)>>,
    wakers: BTreeMap<u64, Waker>,
}

impl SimClock {
    /// A clock at time zero (wall time [`SIM_EPOCH_SECS`]).
    pub fn new() -> SimClock {
        SimClock::default()
    }

    /// Moves time to the earliest pending sleep and wakes every sleep due by then; `false` when
    /// nothing sleeps.
    pub fn advance(&self) -> bool {
        let mut state = self.state.borrow_mut();
        let next = loop {
            match state.heap.peek() {
                None => break None,
                Some(Reverse((_, id))) if !state.wakers.contains_key(id) => {
                    state.heap.pop();
                }
                Some(Reverse((deadline, _))) => break Some(*deadline),
            }
        };
        let Some(deadline) = next else {
            return false;
        };
        state.now = state.now.max(deadline);
        let mut due = Vec::new();
        while let Some(Reverse((at, id))) = state.heap.peek().copied() {
            if at > state.now {
                break;
            }
            state.heap.pop();
            if let Some(waker) = state.wakers.remove(&id) {
                due.push(waker);
            }
        }
        drop(state);
        for waker in due {
            waker.wake();
        }
        true
    }
}

impl ClockPort for SimClock {
    fn wall(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(SIM_EPOCH_SECS) + self.state.borrow().now
    }

    fn monotonic(&self) -> Duration {
        self.state.borrow().now
    }

    async fn sleep(&self, duration: Duration) {
        Sleep {
            clock: self,
            duration,
            deadline: None,
            id: None,
        }
        .await;
    }
}

/// A pending simulated sleep.
struct Sleep<'a> {
    clock: &'a SimClock,
    duration: Duration,
    deadline: Option<Duration>,
    id: Option<u64>,
}

impl Future for Sleep<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let mut state = this.clock.state.borrow_mut();
        let deadline = *this.deadline.get_or_insert(state.now + this.duration);
        if state.now >= deadline {
            if let Some(id) = this.id.take() {
                state.wakers.remove(&id);
            }
            return Poll::Ready(());
        }
        let id = match this.id {
            Some(id) => id,
            None => {
                let id = state.next_id;
                state.next_id += 1;
                state.heap.push(Reverse((deadline, id)));
                this.id = Some(id);
                id
            }
        };
        state.wakers.insert(id, cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Sleep<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.clock.state.borrow_mut().wakers.remove(&id);
        }
    }
}

struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Runs `future` to completion on this thread, advancing `clock` whenever the future waits only
/// for simulated time.
///
/// # Panics
///
/// When the future waits for something other than `clock` (nothing could ever wake it).
pub fn block_on<F: Future>(clock: &SimClock, future: F) -> F::Output {
    let flag = Arc::new(Flag(AtomicBool::new(true)));
    let waker = Waker::from(Arc::clone(&flag));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if flag.0.swap(false, Ordering::SeqCst) {
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return output;
            }
            continue;
        }
        assert!(
            clock.advance(),
            "the simulated run is stuck: it waits for something other than the simulated clock"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::race::{Either, race};

    #[test]
    fn the_earlier_sleep_wins_a_race_and_time_is_exact() {
        let clock = SimClock::new();
        let winner = block_on(&clock, async {
            race(
                clock.sleep(Duration::from_millis(1500)),
                clock.sleep(Duration::from_secs(10)),
            )
            .await
        });
        assert_eq!(winner, Either::Left(()));
        assert_eq!(clock.monotonic(), Duration::from_millis(1500));
        // The dropped sleep does not move time later.
        block_on(&clock, async { clock.sleep(Duration::from_secs(1)).await });
        assert_eq!(clock.monotonic(), Duration::from_millis(2500));
    }

    #[test]
    fn zero_sleeps_complete_at_once() {
        let clock = SimClock::new();
        block_on(&clock, async { clock.sleep(Duration::ZERO).await });
        assert_eq!(clock.monotonic(), Duration::ZERO);
    }
}
