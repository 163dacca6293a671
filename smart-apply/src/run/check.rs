//! Whether the original serves again: the live check and the health URL.

use serde_json::json;
use smart_core::audit::{Action, Outcome};

use crate::Applier;
use crate::error::{Error, ErrorKind, Step};
use crate::http::{self, Expect};

use super::RunState;

impl RunState {
    /// What the live check expects once the configuration as found serves again: exactly what it
    /// sent before the first change, or (for runs recorded before smart observed that) none of
    /// the values this run's variants sent.
    pub(crate) fn found_expect(&self) -> Expect {
        match &self.manifest.found_live {
            Some(found) => Expect::Found(found.value.clone()),
            None => Expect::NotAny(self.live_values.clone()),
        }
    }

    /// Runs the live check, when there is one, against `expect`.
    pub(crate) async fn check_live(&self, applier: &Applier, expect: &Expect) -> Result<(), Error> {
        let Some(live) = &self.apply.live_check else {
            return Ok(());
        };
        if matches!(expect, Expect::NotAny(values) if values.is_empty()) {
            self.audit(
                applier,
                Action::LiveCheck,
                Outcome::Skipped,
                json!({"url": http::redact(&live.url), "reason": "no variant was live, so there is nothing to tell apart"}),
            )?;
            return Ok(());
        }
        let result = http::live_check(&live.url, &live.header, expect, self.check_timeout()).await;
        let (outcome, detail) = match &result {
            Ok(value) => (Outcome::Ok, json!({"header_value": value})),
            Err(e) => (Outcome::Failed, json!({"error": e})),
        };
        self.audit(
            applier,
            Action::LiveCheck,
            outcome,
            json!({"url": http::redact(&live.url), "header": live.header, "expect": expect.describe(), "result": detail}),
        )?;
        result.map(drop).map_err(|e| {
            Error::new(
                ErrorKind::Reverted,
                Step::LiveCheck,
                format!("{}: {e}", http::redact(&live.url)),
            )
        })
    }

    /// Polls the health URL, when there is one.
    pub(crate) async fn check_health(&self, applier: &Applier) -> Result<(), Error> {
        let Some(health) = &self.apply.health else {
            return Ok(());
        };
        let result = http::health(
            &applier.http,
            &health.url,
            &health.ok_status,
            self.check_timeout(),
        )
        .await;
        let (outcome, detail) = match &result {
            Ok(status) => (Outcome::Ok, json!({"status": status})),
            Err(e) => (Outcome::Failed, json!({"error": e})),
        };
        self.audit(
            applier,
            Action::Health,
            outcome,
            json!({"url": http::redact(&health.url), "result": detail}),
        )?;
        result.map(drop).map_err(|e| {
            Error::new(
                ErrorKind::Reverted,
                Step::Health,
                format!("{}: {e}", http::redact(&health.url)),
            )
        })
    }
}
