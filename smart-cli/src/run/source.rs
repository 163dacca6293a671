//! The measurement port of a run: the experiment's `measure.source` picks smart's own probe or
//! another source (smart-source), and either way each block also records what the host did.

use smart_core::Experiment;
use smart_core::engine::{self, BlockMeasurement, BlockRequest, LiveProgress, PortError};
use smart_core::experiment::SourceKind;
use smart_probe::{EngineProbe, HostSnapshot};
use smart_source::CommandSource;

/// The source that measures each block of one experiment.
#[derive(Debug)]
pub(crate) enum Source {
    /// smart's own open-loop HTTP probe (it reads the host's pressure itself).
    Probe(Box<EngineProbe>),
    /// A command run once per block.
    Command(CommandSource),
}

impl Source {
    /// The experiment's source, set up (a missing program or a bad target is found now, before
    /// anything changes). The probe's client needs a tokio runtime's context.
    pub(crate) fn new(experiment: &Experiment) -> Result<Source, String> {
        let measure = experiment.measure();
        match (measure.source, &measure.command) {
            (SourceKind::Command, Some(spec)) => CommandSource::new(spec)
                .map(Source::Command)
                .map_err(|e| e.to_string()),
            (SourceKind::Command, None) => {
                Err("measure.command is missing for the command source".to_owned())
            }
            (SourceKind::Probe, _) => EngineProbe::new(experiment)
                .map(|p| Source::Probe(Box::new(p)))
                .map_err(|e| format!("cannot set up the probe: {e}")),
        }
    }
}

impl engine::Probe for Source {
    async fn measure(
        &mut self,
        request: &BlockRequest<'_>,
        progress: &mut dyn FnMut(&LiveProgress),
    ) -> Result<BlockMeasurement, PortError> {
        match self {
            Source::Probe(probe) => probe.measure(request, progress).await,
            Source::Command(command) => {
                let start = HostSnapshot::read();
                let mut m = command.measure(request, progress).await?;
                m.host = Some(start.pressure(&HostSnapshot::read()));
                Ok(m)
            }
        }
    }
}
