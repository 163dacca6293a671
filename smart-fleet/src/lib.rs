//! Fleet experiments for `smart`: the baseline and a variant run at the same time on two groups
//! of hosts drawn from an Ansible inventory, swapping every period (a crossover), judged by the
//! same sequential sign-flip test as a single host, then promoted to the rest of the fleet in
//! stages, or reverted everywhere.
//!
//! Hosts come from `ansible-inventory --list` ([`inventory_hosts`]); a group is switched by the
//! experiment's apply argv (typically `ansible-playbook -l {{ hosts }}`) through [`Switch`]; a
//! group is measured by the Prometheus source with its hosts in the queries' matchers through
//! [`Measure`]. Every change is journalled first ([`Journal`]), so [`recover`] can put back every
//! host a killed coordinator touched. See `docs/experiment-format.md` ("Fleet experiments").

mod ansible;
mod design;
mod error;
mod journal;
mod run;
mod spec;

pub use ansible::{CommandSwitch, Switch, SwitchFailure, inventory_hosts};
pub use design::{Group, first_variant, hosts_regex, position, split, stage_counts};
pub use error::{FleetError, FleetErrorKind};
pub use journal::{
    Finish, HostState, Journal, JournalRecord, Recovered, journal_dir, recover, recover_with,
    running_dir,
};
pub use run::{Event, FleetOutcome, Measure, PrometheusMeasure, run_fleet};
pub use spec::{
    FleetApply, FleetExperiment, FleetMeasure, FleetSection, FleetSpec, FleetVariant,
    HOSTS_PLACEHOLDER, HOSTS_REGEX_PLACEHOLDER, INVENTORY_PLACEHOLDER, RESERVED, schema,
};
