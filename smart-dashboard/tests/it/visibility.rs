//! The live script's pause while the tab is hidden: `assets/dashboard.js` runs under node with a
//! fake DOM, fake timers and a counting `fetch` (`tests/js/visibility.js`), since headless
//! Chromium never hides its page. Polling must stop while hidden and resume at once when shown.

use std::path::Path;
use std::process::Command;

#[test]
fn polling_pauses_while_the_tab_is_hidden() {
    if !smart_testkit::require_tool("node", "visibility::polling_pauses_while_the_tab_is_hidden") {
        return;
    }
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new("node")
        .arg(crate_dir.join("tests/js/visibility.js"))
        .arg(crate_dir.join("assets/dashboard.js"))
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert_eq!(stdout.trim(), "ok: 8 checks", "{stderr}");
}
