//! The validated experiment: the only form the engine, probe and appliers accept. It can only be
//! built by [`crate::validate`], so whoever holds one never re-checks: defaults are applied, the
//! variants are expanded, every template is inline, and every arm is known to render.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::experiment::{
    Apply, Decision, ExperimentSpec, Guardrails, Method, Params, Schedule, Target, VariantSpec,
};
use crate::schedule::Durations;
use crate::template::{self, TemplateError};

/// The name of the baseline arm (no variant may take it).
pub const BASELINE: &str = "baseline";

/// A checked experiment, ready to run.
///
/// ```
/// use smart_core::{Defaults, validate};
///
/// let json = r#"{
///     "name": "gzip-level",
///     "target": {"urls": ["http://127.0.0.1/"]},
///     "apply": {"files": [{"path": "/etc/nginx/conf.d/gzip.conf",
///                          "template": "gzip_comp_level {{ level }};\n"}]},
///     "matrix": {"level": [1, 6]}
/// }"#;
/// let experiment = validate::validate_text(json, "gzip.json".as_ref(), &Defaults::default())
///     .expect("a valid experiment");
/// let names: Vec<&str> = experiment.variants().iter().map(|v| v.name.as_str()).collect();
/// assert_eq!(names, ["level-1", "level-6"]);
/// let rendered = experiment.render(&experiment.apply().files[0], "level-6").unwrap();
/// assert_eq!(rendered.as_deref(), Some("gzip_comp_level 6;\n"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Experiment {
    definition: ExperimentSpec,
    variants: Vec<VariantSpec>,
    source: PathBuf,
    definition_hash: String,
    durations: Durations,
    probe_target: Option<ProbeTarget>,
}

impl Experiment {
    /// Wraps a definition that validation has fully checked.
    pub(crate) fn new(
        definition: ExperimentSpec,
        variants: Vec<VariantSpec>,
        source: PathBuf,
        durations: Durations,
    ) -> Self {
        let canonical =
            serde_json::to_vec(&definition).expect("the experiment types always serialize");
        let definition_hash = hex(&Sha256::digest(&canonical));
        let probe_target = ProbeTarget::of(&definition.target);
        Experiment {
            definition,
            variants,
            source,
            definition_hash,
            durations,
            probe_target,
        }
    }

    /// The experiment's name (`[a-z0-9_-]`, unique in the experiments dir).
    pub fn name(&self) -> &str {
        &self.definition.name
    }

    /// What the experiment asks, in a sentence.
    pub fn description(&self) -> &str {
        &self.definition.description
    }

    /// What the probe measures.
    pub fn target(&self) -> &Target {
        &self.definition.target
    }

    /// The target as the probe requests it, `None` when `target.urls` is not given (a source
    /// other than the probe may leave it out; with the probe source, or an access log's fill-in,
    /// validation requires it).
    pub fn probe_target(&self) -> Option<&ProbeTarget> {
        self.probe_target.as_ref()
    }

    /// Where each block's figures come from (the probe unless `measure.source` says otherwise).
    pub fn measure(&self) -> &crate::experiment::Measure {
        &self.definition.measure
    }

    /// What the experiment changes. Every file has exactly one of `template` and `edit`
    /// (`template_file` has been read into `template`), so appliers only ever read `template`.
    pub fn apply(&self) -> &Apply {
        &self.definition.apply
    }

    /// Params that render the baseline; `None` when the baseline is the configuration as found.
    pub fn baseline(&self) -> Option<&Params> {
        self.definition.baseline.as_ref()
    }

    /// The variants to try, explicit or expanded from the matrix: names unique, valid and never
    /// `baseline`, in the order they are tried.
    pub fn variants(&self) -> &[VariantSpec] {
        &self.variants
    }

    /// A variant by name.
    pub fn variant(&self, name: &str) -> Option<&VariantSpec> {
        self.variants.iter().find(|v| v.name == name)
    }

    /// The schedule (defaults and `smart.toml` defaults applied).
    pub fn schedule(&self) -> &Schedule {
        &self.definition.schedule
    }

    /// When a variant is kept.
    pub fn decision(&self) -> &Decision {
        &self.definition.decision
    }

    /// Limits that abort a variant at once.
    pub fn guardrails(&self) -> &Guardrails {
        &self.definition.guardrails
    }

    /// The file the experiment was read from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// The effective definition as run and hashed: defaults applied, templates inline; its
    /// `variants`/`matrix` are as written (use [`Experiment::variants`] for the expanded list).
    pub fn definition(&self) -> &ExperimentSpec {
        &self.definition
    }

    /// The SHA-256 (lowercase hex) of the effective definition's canonical JSON: it changes when
    /// anything that affects a run changes (a template file's content included), and not when
    /// only formatting or key order does.
    pub fn definition_hash(&self) -> &str {
        &self.definition_hash
    }

    /// The worst-case and expected duration of a run.
    pub fn durations(&self) -> Durations {
        self.durations
    }

    /// The values an arm's templates render with (its params as text, plus `variant` = the
    /// arm's name); `None` for an unknown arm and for `baseline` when the baseline is the
    /// configuration as found.
    pub fn arm_values(&self, arm: &str) -> Option<BTreeMap<String, String>> {
        let params = if arm == BASELINE {
            self.baseline()?
        } else {
            &self.variant(arm)?.params
        };
        Some(template::arm_values(arm, params))
    }

    /// Renders `text` (a template, an edit's replacement, a `set` or `live_check` value) for an
    /// arm; `Ok(None)` when the arm has no values (see [`Experiment::arm_values`]). Validation has
    /// rendered every template of this experiment for every arm, so for those this never fails.
    pub fn render_text(&self, text: &str, arm: &str) -> Result<Option<String>, TemplateError> {
        match self.arm_values(arm) {
            Some(values) => template::render(text, &values).map(Some),
            None => Ok(None),
        }
    }

    /// Renders a file's whole-file `template` (or its edit's replacement line) for an arm.
    pub fn render(
        &self,
        file: &crate::experiment::FileSpec,
        arm: &str,
    ) -> Result<Option<String>, TemplateError> {
        match (&file.template, &file.edit) {
            (Some(text), _) => self.render_text(text, arm),
            (None, Some(edit)) => self.render_text(&edit.replace, arm),
            (None, None) => Ok(None),
        }
    }
}

/// An experiment's `target` as validation checked it, so that the probe built from it cannot
/// fail on its settings: at least one URL, each an http(s) URL with a host and no credentials
/// (parsed once, here), header names that are HTTP tokens and values without control characters,
/// a rate above 0, a timeout above 0 and a non-empty list of status codes from 100 to 599.
/// Only [`Experiment::probe_target`] hands one out.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeTarget {
    urls: Vec<url::Url>,
    method: Method,
    headers: BTreeMap<String, String>,
    rate_per_s: f64,
    timeout: Duration,
    ok_status: Vec<u16>,
}

impl ProbeTarget {
    /// The checked form of a validated target; `None` without URLs.
    fn of(target: &Target) -> Option<ProbeTarget> {
        if target.urls.is_empty() {
            return None;
        }
        let urls = target
            .urls
            .iter()
            .map(|url| url::Url::parse(url).expect("validation parsed every target URL"))
            .collect();
        Some(ProbeTarget {
            urls,
            method: target.method,
            headers: target.headers.clone(),
            rate_per_s: target.rate_per_s,
            timeout: Duration::from_millis(target.timeout_ms),
            ok_status: target.ok_status.clone(),
        })
    }

    /// The URLs, requested in round-robin: never empty, each http(s) with a host.
    pub fn urls(&self) -> &[url::Url] {
        &self.urls
    }

    /// GET or HEAD.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The request headers: names are HTTP tokens (RFC 9110 `tchar`), values hold no control
    /// character other than tab.
    pub fn headers(&self) -> &BTreeMap<String, String> {
        &self.headers
    }

    /// The open loop's rate, in requests per second: above 0.
    pub fn rate_per_s(&self) -> f64 {
        self.rate_per_s
    }

    /// How long one request may take: above 0.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The status codes that count as success: at least one, each from 100 to 599.
    pub fn ok_status(&self) -> &[u16] {
        &self.ok_status
    }
}

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
