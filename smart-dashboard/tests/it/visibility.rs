//! The live script's pause while the tab is hidden: `assets/dashboard.js` runs under node with a
//! fake DOM, fake timers and a counting `fetch` (`tests/js/visibility.js`), since headless
//! Chromium never hides its page. Polling must stop while hidden and resume at once when shown;
//! a page opened from disk (file://) must not poll and must say why, without alarm.

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
    assert_eq!(stdout.trim(), "ok: 9 checks", "{stderr}");
}

#[test]
fn a_page_opened_as_a_file_explains_live_updates_calmly() {
    if !smart_testkit::require_tool(
        "node",
        "visibility::a_page_opened_as_a_file_explains_live_updates_calmly",
    ) {
        return;
    }
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new("node")
        .arg(crate_dir.join("tests/js/visibility.js"))
        .arg(crate_dir.join("assets/dashboard.js"))
        .arg("file:")
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert_eq!(stdout.trim(), "ok: 4 checks", "{stderr}");
}
