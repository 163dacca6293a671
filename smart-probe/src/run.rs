//! The probe itself: one HTTP client (connection pool) reused across blocks, the open-loop
//! timetable and the closed-loop workers, request classification and the guardrail ticks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use crate::guard::{GuardState, SLOT, Window};
use crate::lean::{LeanConnection, LeanPool, LeanTarget};
use crate::outcome::Answer;
use crate::{
    Abort, BlockMeta, BlockPlan, BlockRecorder, BlockResult, Load, Outcome, ProbeConfig,
    ProbeError, Progress, ProgressSink,
};

/// Progress is sent every this many guard ticks (100 ms each).
const PROGRESS_EVERY_TICKS: u64 = 5;
/// How late on its timetable a request may go out and still count as on time. tokio's timer
/// rounds deadlines up to whole milliseconds and a parked runtime wakes later still (measured:
/// median 0.6 ms, p99 about 4 ms at 2,000 req/s on a busy 2-core machine), which is the probe's
/// jitter, not the server's latency. Lateness beyond this (the probe starved of CPU) counts in
/// the latency, as wrk2 counts it.
pub(crate) const SCHEDULE_GRACE: Duration = Duration::from_millis(5);

/// An HTTP probe for one target. Create it once and run many blocks: connections are kept alive
/// and reused between blocks, as a real client of the server would.
///
/// ```no_run
/// # async fn demo() -> Result<(), smart_probe::ProbeError> {
/// use std::time::Duration;
/// use smart_core::experiment::Target;
/// use smart_probe::{BlockPlan, NoProgress, Probe, ProbeConfig};
///
/// let target: Target = serde_json::from_str(r#"{"urls": ["http://127.0.0.1:8080/"]}"#).unwrap();
/// let probe = Probe::new(ProbeConfig::builder(&target).build()?)?;
/// let plan = BlockPlan { warmup: Duration::from_secs(2), ..BlockPlan::measure(Duration::from_secs(10)) };
/// let result = probe.run_block(plan, &NoProgress).await?;
/// println!("p50 {:?} µs, errors {:.2} %", result.latency.map(|l| l.p50_us), result.error_rate_pct);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Probe {
    ctx: Arc<Ctx>,
}

#[derive(Debug)]
struct Ctx {
    /// The keep-alive pool of targets the lean path does not take (HTTPS, several hosts).
    client: reqwest::Client,
    /// A client without a pool, for the one retry after a closed kept-alive connection.
    fresh: reqwest::Client,
    /// For plain HTTP on one host: the lean path, which the open loop takes instead of reqwest.
    lean: Option<(Arc<LeanTarget>, LeanPool)>,
    config: ProbeConfig,
}

impl Probe {
    /// Sets up the HTTP client: rustls, keep-alive pool, no proxy, no redirects followed (a
    /// redirect is an answer like any other), the config's headers on every request.
    pub fn new(config: ProbeConfig) -> Result<Probe, ProbeError> {
        let builder = || {
            reqwest::Client::builder()
                .default_headers(config.headers.clone())
                .connect_timeout(config.timeout)
                .tcp_nodelay(true)
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                // Not even a clone of every request for a retry that never comes.
                .retry(reqwest::retry::never().max_retries_per_request(0))
                .user_agent(concat!("smart-probe/", env!("CARGO_PKG_VERSION")))
        };
        let client = builder().build().map_err(ProbeError::client)?;
        // After a reload several pooled connections close at once, so a retry on the pool could
        // pick another dying one: retries go on a new connection, not kept afterwards.
        let fresh = builder()
            .pool_max_idle_per_host(0)
            .build()
            .map_err(ProbeError::client)?;
        let lean = LeanTarget::of(&config).map(|target| (Arc::new(target), LeanPool::default()));
        Ok(Probe {
            ctx: Arc::new(Ctx {
                client,
                fresh,
                lean,
                config,
            }),
        })
    }

    /// The settings this probe runs with.
    pub fn config(&self) -> &ProbeConfig {
        &self.ctx.config
    }

    /// Runs one block: load for `plan.warmup + plan.measure`, recording what is due after the
    /// warm-up; then waits for the requests still in flight (each ends by the timeout).
    ///
    /// Returns early, with [`BlockResult::abort`] set, when the guard trips. Cancel-safe:
    /// dropping the future stops every request of the block at once.
    pub async fn run_block<S: ProgressSink + ?Sized>(
        &self,
        plan: BlockPlan,
        sink: &S,
    ) -> Result<BlockResult, ProbeError> {
        if plan.measure.is_zero() {
            return Err(ProbeError::invalid(
                "duration",
                "must be more than 0 seconds",
            ));
        }
        let block = Block::new(&self.ctx, plan);
        let (abort, last_send) = match self.ctx.config.load {
            Load::Open { rate_per_s } => self.run_open(&block, rate_per_s, sink).await,
            Load::Closed { connections } => self.run_closed(&block, connections, sink).await,
        };
        let now = Instant::now();
        let duration = match abort {
            Some(_) => now.saturating_duration_since(block.measure_start),
            None => plan
                .measure
                .max(last_send.saturating_duration_since(block.measure_start)),
        };
        let (recorder, progress) = {
            let mut inner = block.lock();
            let progress = inner.progress(&block, now);
            let recorder = std::mem::replace(&mut inner.recorder, BlockRecorder::new(1));
            (recorder, progress)
        };
        sink.progress(&progress);
        Ok(recorder.finish(BlockMeta {
            load: self.ctx.config.load,
            warmup: plan.warmup,
            duration,
            abort,
        }))
    }

    /// The open loop: request `i` is due at `start + i / rate`; a request that is due is sent at
    /// once (several when the task woke late), unless the in-flight cap refuses it (overload).
    /// Returns the abort, if any, and when the last recorded request was actually sent.
    async fn run_open(
        &self,
        block: &Arc<Block>,
        rate: f64,
        sink: &(impl ProgressSink + ?Sized),
    ) -> (Option<Abort>, Instant) {
        let ctx = &self.ctx;
        let cap = Arc::new(Semaphore::new(ctx.config.max_in_flight));
        let mut tasks = JoinSet::new();
        let mut ticker = Ticker::new(block);
        let due_at = |i: u64| block.start + Duration::from_secs_f64(i as f64 / rate);
        let mut next = 0u64;
        let mut last_send = block.measure_start;
        let abort = loop {
            let due = due_at(next);
            if due >= block.end {
                break None;
            }
            tokio::select! {
                biased;
                _ = ticker.tick() => {
                    if let Some(abort) = ticker.check(block, sink) {
                        break Some(abort);
                    }
                }
                () = tokio::time::sleep_until(due) => {
                    let now = Instant::now();
                    loop {
                        let due = due_at(next);
                        if due > now || due >= block.end {
                            break;
                        }
                        let url = next as usize % ctx.config.urls.len();
                        next += 1;
                        let Ok(permit) = Arc::clone(&cap).try_acquire_owned() else {
                            let timing = Timing { due, start: due, done: due, late: false };
                            block.ended(timing, Answer::OVERLOAD);
                            continue;
                        };
                        if due >= block.measure_start {
                            last_send = now;
                        }
                        block.sent(now);
                        let (ctx, block) = (Arc::clone(ctx), Arc::clone(block));
                        tasks.spawn(async move {
                            // The send time as close to the write as the task can take it: the
                            // spawn's scheduling is the probe's jitter, like the timer's.
                            let sent = Instant::now();
                            let late = sent > due + SCHEDULE_GRACE;
                            let start = sent.min(due + SCHEDULE_GRACE);
                            let answer = ctx.send(url).await;
                            let done = Instant::now();
                            block.ended(Timing { due, start, done, late }, answer);
                            drop(permit);
                        });
                    }
                    while tasks.try_join_next().is_some() {}
                }
            }
        };
        let abort = match abort {
            Some(abort) => Some(abort),
            None => ticker.drain(block, &mut tasks, sink).await,
        };
        (abort, last_send)
    }

    /// The closed loop: `connections` workers, each sending its next request when the last one
    /// ended, until the block's end; the URLs go round-robin across all workers. For plain HTTP
    /// on one host each worker owns a lean hyper connection (see [`crate::lean`]).
    async fn run_closed(
        &self,
        block: &Arc<Block>,
        connections: usize,
        sink: &(impl ProgressSink + ?Sized),
    ) -> (Option<Abort>, Instant) {
        let mut tasks = JoinSet::new();
        let next = Arc::new(AtomicUsize::new(0));
        let lean = self.ctx.lean.as_ref().map(|(target, _)| Arc::clone(target));
        for _ in 0..connections {
            let (ctx, block, next) = (Arc::clone(&self.ctx), Arc::clone(block), Arc::clone(&next));
            let lean = lean.clone();
            tasks.spawn(async move {
                let urls = ctx.config.urls.len();
                let mut connection = LeanConnection::default();
                loop {
                    let sent = Instant::now();
                    if sent >= block.end {
                        break;
                    }
                    block.sent(sent);
                    let url = next.fetch_add(1, Ordering::Relaxed) % urls;
                    let answer = match &lean {
                        Some(target) => {
                            let send = connection.send(&ctx.config, target, url);
                            match tokio::time::timeout(ctx.config.timeout, send).await {
                                Ok(answer) => answer,
                                Err(_) => {
                                    connection = LeanConnection::default();
                                    Answer::TIMEOUT
                                }
                            }
                        }
                        None => ctx.send(url).await,
                    };
                    let done = Instant::now();
                    block.ended(
                        Timing {
                            due: sent,
                            start: sent,
                            done,
                            late: false,
                        },
                        answer,
                    );
                }
            });
        }
        let abort = Ticker::new(block).drain(block, &mut tasks, sink).await;
        (abort, block.measure_start)
    }
}

/// When a request was due on the timetable, when its latency starts (the send, or the due time
/// plus [`SCHEDULE_GRACE`] if the send was later) and when it ended.
#[derive(Clone, Copy)]
struct Timing {
    due: Instant,
    start: Instant,
    done: Instant,
    /// Sent more than [`SCHEDULE_GRACE`] after its due time.
    late: bool,
}

impl Ctx {
    /// Sends one request to `urls[url]` and reads the whole body, within the timeout: on the
    /// lean pool for plain HTTP on one host, else through reqwest.
    async fn send(&self, url: usize) -> Answer {
        let config = &self.config;
        if let Some((target, pool)) = &self.lean {
            return tokio::time::timeout(config.timeout, pool.send(config, target, url))
                .await
                .unwrap_or(Answer::TIMEOUT);
        }
        let attempt = async {
            let mut retried = false;
            loop {
                let client = if retried { &self.fresh } else { &self.client };
                let request = client.request(config.method.clone(), config.urls[url].clone());
                let mut response = match request.send().await {
                    Ok(response) => response,
                    Err(e) if !retried && closed_before_response(&e) => {
                        // A kept-alive connection the server had closed (nginx does on reload):
                        // GET and HEAD are safe to send again, on a fresh connection.
                        retried = true;
                        continue;
                    }
                    Err(e) => {
                        return Answer {
                            outcome: classify(&e),
                            status: None,
                            retried,
                        };
                    }
                };
                let status = response.status().as_u16();
                loop {
                    match response.chunk().await {
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(e) => {
                            return Answer {
                                outcome: classify(&e),
                                status: None,
                                retried,
                            };
                        }
                    }
                }
                let outcome = if config.ok_status.contains(&status) {
                    Outcome::Ok
                } else {
                    Outcome::BadStatus
                };
                return Answer {
                    outcome,
                    status: Some(status),
                    retried,
                };
            }
        };
        tokio::time::timeout(config.timeout, attempt)
            .await
            .unwrap_or(Answer::TIMEOUT)
    }
}

fn classify(error: &reqwest::Error) -> Outcome {
    if error.is_timeout() {
        Outcome::Timeout
    } else if error.is_connect() {
        Outcome::Connect
    } else {
        Outcome::Other
    }
}

/// Whether the request failed because its (pooled) connection was closed or reset before any
/// response arrived: hyper's "connection closed before message completed", or a reset or broken
/// pipe while writing. hyper itself only retries when the close was seen before the write.
fn closed_before_response(error: &reqwest::Error) -> bool {
    if error.is_connect() || error.is_timeout() {
        return false;
    }
    for e in smart_core::error_chain::chain(error).skip(1) {
        if let Some(hyper_error) = e.downcast_ref::<hyper::Error>()
            && hyper_error.is_incomplete_message()
        {
            return true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            )
        {
            return true;
        }
    }
    false
}

/// The shared state of one running block.
struct Block {
    /// Whether a guard runs, so sends are worth tracking.
    guarded: bool,
    start: Instant,
    measure_start: Instant,
    end: Instant,
    inner: Mutex<Inner>,
}

struct Inner {
    recorder: BlockRecorder,
    /// Outcomes of the last second, warm-up included, for the live rate.
    recent: Window,
    guard: Option<GuardState>,
}

impl Block {
    fn new(ctx: &Ctx, plan: BlockPlan) -> Arc<Block> {
        let start = Instant::now();
        let measure_start = start + plan.warmup;
        Arc::new(Block {
            guarded: plan.guard.is_some(),
            start,
            measure_start,
            end: measure_start + plan.measure,
            inner: Mutex::new(Inner {
                recorder: BlockRecorder::new(ctx.config.max_samples),
                recent: Window::new(Duration::from_secs(1)),
                guard: plan.guard.map(GuardState::new),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sent(&self, at: Instant) {
        if !self.guarded {
            return;
        }
        let mut inner = self.lock();
        if let Some(guard) = &mut inner.guard {
            guard.sent(at - self.start);
        }
    }

    /// A request ended.
    fn ended(&self, timing: Timing, answer: Answer) {
        let Answer {
            outcome,
            status,
            retried,
        } = answer;
        let at = timing.done.saturating_duration_since(self.start);
        let mut inner = self.lock();
        inner.recent.add(at, outcome.is_error());
        if let Some(guard) = &mut inner.guard {
            guard.ended(at, outcome.is_answer(), outcome.is_error());
        }
        if timing.due >= self.measure_start {
            inner.recorder.record(
                timing.due - self.measure_start,
                timing.done.saturating_duration_since(timing.start),
                outcome,
                status,
            );
            if retried {
                inner.recorder.record_retry();
            }
            if timing.late {
                inner.recorder.record_late();
            }
        }
    }
}

impl Inner {
    fn progress(&self, block: &Block, now: Instant) -> Progress {
        let elapsed = now.saturating_duration_since(block.start);
        let (recent, _) = self.recent.totals(elapsed);
        let counts = self.recorder.counts();
        let histogram = self.recorder.histogram();
        Progress {
            warming_up: now < block.measure_start,
            elapsed_s: elapsed.as_secs_f64(),
            samples: counts.total(),
            errors: counts.errors(),
            current_rate_per_s: recent as f64 / self.recent.span().as_secs_f64(),
            p50_us: (!histogram.is_empty()).then(|| histogram.value_at_quantile(0.5)),
        }
    }
}

/// Every 100 ms: the guard's check, and every few ticks a progress snapshot.
struct Ticker {
    interval: tokio::time::Interval,
    ticks: u64,
}

impl Ticker {
    fn new(block: &Block) -> Ticker {
        let mut interval = tokio::time::interval_at(block.start + SLOT, SLOT);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Ticker { interval, ticks: 0 }
    }

    async fn tick(&mut self) {
        self.interval.tick().await;
    }

    fn check(&mut self, block: &Block, sink: &(impl ProgressSink + ?Sized)) -> Option<Abort> {
        let now = Instant::now();
        self.ticks += 1;
        let (abort, progress) = {
            let inner = block.lock();
            let abort = inner
                .guard
                .as_ref()
                .and_then(|g| g.check(now.saturating_duration_since(block.start)));
            let progress = self
                .ticks
                .is_multiple_of(PROGRESS_EVERY_TICKS)
                .then(|| inner.progress(block, now));
            (abort, progress)
        };
        if let Some(progress) = progress {
            sink.progress(&progress);
        }
        abort
    }

    /// Waits for `tasks` to end, still checking the guard; an abort stops them all.
    async fn drain(
        &mut self,
        block: &Block,
        tasks: &mut JoinSet<()>,
        sink: &(impl ProgressSink + ?Sized),
    ) -> Option<Abort> {
        loop {
            tokio::select! {
                biased;
                _ = self.tick() => {
                    if let Some(abort) = self.check(block, sink) {
                        tasks.abort_all();
                        return Some(abort);
                    }
                }
                joined = tasks.join_next() => {
                    joined.as_ref()?;
                }
            }
        }
    }
}
