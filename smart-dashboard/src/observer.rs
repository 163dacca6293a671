//! [`LiveDashboard`]: an engine observer that keeps the dashboard current during a run — the run's
//! page and the index after every block and decision (throttled), `status.json` every couple of
//! seconds, and everything once more when the run ends.

use std::time::Duration;

use smart_core::engine::{Event, EventKind, ObserverError, ObserverPort};

use crate::{Dashboard, DashboardError};

/// How often `status.json` is copied into the dashboard dir at most.
const STATUS_EVERY: Duration = Duration::from_secs(2);
/// How often pages are re-rendered at most (the run's end always renders).
const DEFAULT_RENDER_EVERY: Duration = Duration::from_secs(5);

/// Re-renders the dashboard as a run goes. Pair it after the records observer, so it reads what
/// was just written: `(Records::new(state_dir), LiveDashboard::new(dashboard))`.
///
/// A dashboard that cannot be written never stops a run (the records are what matters): the
/// error is kept for [`LiveDashboard::take_error`] and rendering is tried again later.
#[derive(Debug)]
pub struct LiveDashboard {
    dashboard: Dashboard,
    render_every: Duration,
    run_id: Option<String>,
    pending: bool,
    last_render: Option<Duration>,
    last_status: Option<Duration>,
    error: Option<DashboardError>,
}

impl LiveDashboard {
    /// Keeps `dashboard` current, re-rendering pages at most every 5 seconds of the run.
    pub fn new(dashboard: Dashboard) -> LiveDashboard {
        LiveDashboard::with_interval(dashboard, DEFAULT_RENDER_EVERY)
    }

    /// Keeps `dashboard` current, re-rendering pages at most every `render_every`.
    pub fn with_interval(dashboard: Dashboard, render_every: Duration) -> LiveDashboard {
        LiveDashboard {
            dashboard,
            render_every,
            run_id: None,
            pending: false,
            last_render: None,
            last_status: None,
            error: None,
        }
    }

    /// The last error met while rendering, if any (taking it clears it).
    pub fn take_error(&mut self) -> Option<DashboardError> {
        self.error.take()
    }

    fn handle(&mut self, event: &Event<'_>) -> Result<(), DashboardError> {
        let mut now = false;
        match event.kind {
            EventKind::RunStarted { plan, .. } => {
                self.run_id = Some(plan.run_id.clone());
                self.last_render = None;
                self.last_status = None;
                self.pending = true;
            }
            EventKind::BlockFinished { .. } | EventKind::Decided(_) => self.pending = true,
            EventKind::RunFinished(_) => now = true,
            _ => {}
        }
        let since = |last: Option<Duration>, every: Duration| {
            last.is_none_or(|t| event.elapsed.saturating_sub(t) >= every)
        };
        if now || (self.pending && since(self.last_render, self.render_every)) {
            self.pending = false;
            self.last_render = Some(event.elapsed);
            self.last_status = Some(event.elapsed);
            match &self.run_id {
                Some(id) => self.dashboard.render_run(id, event.at)?,
                None => self.dashboard.render(event.at)?,
            };
        } else if since(self.last_status, STATUS_EVERY) {
            self.last_status = Some(event.elapsed);
            self.dashboard.publish_status()?;
        }
        Ok(())
    }
}

impl ObserverPort for LiveDashboard {
    fn event(&mut self, event: &Event<'_>) -> Result<(), ObserverError> {
        if let Err(e) = self.handle(event) {
            self.error = Some(e);
        }
        Ok(())
    }
}
