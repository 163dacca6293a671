//! The engine's probe port over [`Probe`]: smart-core's engine measures blocks through
//! [`smart_core::engine::ProbePort`], and this adapter runs them on the real probe, forwards its live
//! progress, and turns each [`BlockResult`] into the engine's [`BlockMeasurement`].

use std::cell::RefCell;

use smart_core::ProbeTarget;
use smart_core::engine::{self, BlockMeasurement, BlockRequest, LiveProgress, PortError};

use crate::{
    BlockPlan, BlockResult, GuardConfig, HostSnapshot, Probe, ProbeConfig, ProbeError, Progress,
};

/// A [`Probe`] for one experiment's target, as the engine's probe port: each block runs under
/// the guard of the request's guardrails. The engine's future must run inside a tokio runtime
/// (e.g. `Runtime::block_on`).
#[derive(Debug, Clone)]
pub struct EngineProbe {
    config: ProbeConfig,
    /// Set up by the first block and kept (its connections are reused between blocks).
    probe: Option<Probe>,
}

impl EngineProbe {
    /// A probe for a validated experiment's target ([`smart_core::Experiment::probe_target`]):
    /// an open loop at its `rate_per_s`. It cannot fail: validation checked the target, and the
    /// HTTP client, which depends on the machine (its TLS roots), is set up by the first block,
    /// whose error it then is.
    pub fn new(target: &ProbeTarget) -> EngineProbe {
        EngineProbe {
            config: ProbeConfig::new(target),
            probe: None,
        }
    }

    /// Wraps a probe built by hand (e.g. with another load or sample cap).
    pub fn from_probe(probe: Probe) -> EngineProbe {
        EngineProbe {
            config: probe.config().clone(),
            probe: Some(probe),
        }
    }

    /// The probe, set up on first use.
    fn probe(&mut self) -> Result<&Probe, ProbeError> {
        let probe = match self.probe.take() {
            Some(probe) => probe,
            None => Probe::new(self.config.clone())?,
        };
        Ok(self.probe.insert(probe))
    }
}

impl engine::ProbePort for EngineProbe {
    async fn measure(
        &mut self,
        request: &BlockRequest<'_>,
        progress: &mut dyn FnMut(&LiveProgress),
    ) -> Result<BlockMeasurement, PortError> {
        let guard = GuardConfig::from_guardrails(request.guardrails).map_err(PortError::new)?;
        let plan = BlockPlan {
            warmup: request.warmup,
            measure: request.duration,
            guard: Some(guard),
        };
        let progress = RefCell::new(progress);
        let sink = |p: &Progress| (*progress.borrow_mut())(&live(p));
        let probe = self.probe().map_err(PortError::new)?;
        let start = HostSnapshot::read();
        let result = probe.run_block(plan, &sink).await.map_err(PortError::new)?;
        let mut m = measurement(&result);
        // What the host did over the whole block (its cool-down included): the judge compares
        // partner blocks' pressure.
        m.host = Some(start.pressure(&HostSnapshot::read()));
        Ok(m)
    }
}

fn live(p: &Progress) -> LiveProgress {
    LiveProgress {
        warming_up: p.warming_up,
        elapsed_s: p.elapsed_s,
        requests: p.samples,
        errors: p.errors,
        rate_per_s: p.current_rate_per_s,
        p50_us: p.p50_us,
    }
}

/// The engine's view of a block: counts, figures, and the ok latencies of the kept samples.
pub fn measurement(result: &BlockResult) -> BlockMeasurement {
    let counts = &result.counts;
    BlockMeasurement {
        duration_s: result.duration_s,
        requests: counts.total(),
        errors: counts.errors(),
        outcomes: counts
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(o, n)| (o.as_str().to_owned(), n))
            .collect(),
        latencies_us: result.samples.ok_latencies_us().map(u64::from).collect(),
        p50_us: result.latency.map(|l| l.p50_us),
        p90_us: result.latency.map(|l| l.p90_us),
        p99_us: result.latency.map(|l| l.p99_us),
        mean_us: result.latency.map(|l| l.mean_us),
        rate_per_s: result.achieved_rate_per_s,
        aborted: result.abort.map(|a| a.to_string()),
        host: None,
    }
}
