//! Renders the static `smart` dashboard (HTML, CSS, JS and inline SVG charts) from run records.
