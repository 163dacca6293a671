//! One case per validation rule: each input gives exactly the expected problems.

use serde_json::json;

use crate::support::{base, check, check_field, validate_text, with};

#[test]
fn the_base_experiment_is_valid() {
    check(&base().to_string(), &[]);
}

#[test]
fn five_errors_in_five_fields_give_five_messages() {
    let mut input = base();
    input = with(input, "target.rate_per_sec", Some(json!(50)));
    input = with(input, "target.method", Some(json!("POST")));
    input = with(input, "apply.validate", Some(json!("nginx -t")));
    input = with(input, "decision.confidence", Some(json!(95)));
    input = with(input, "variants.1.name", Some(json!("cache-1k")));
    check(
        &input.to_string(),
        &[
            "target.rate_per_sec: unknown key; did you mean \"rate_per_s\"?",
            "target.method: expected \"GET\" or \"HEAD\", found \"POST\"",
            "apply.validate: expected an array of strings like [\"nginx\", \"-t\"], found a string",
            "decision.confidence: expected a number greater than 0 and below 1, found 95; write a fraction",
            "variants[1].name: \"cache-1k\" is also the name of variants[0]",
        ],
    );
}

#[test]
fn malformed_json_gives_line_and_column() {
    check(
        "{\n  \"name\": \"x\",\n}",
        &["invalid JSON at line 3, column 1: "],
    );
    check("", &["invalid JSON at line 1, column 0: EOF"]);
    check("[1, 2]", &["expected an object"]);
    check(
        "{\"name\": \"a\", \"name\": \"b\"}",
        &["invalid JSON at line 1, column 20: duplicate key \"name\""],
    );
}

#[test]
fn deep_nesting_is_rejected_without_overflowing_the_stack() {
    let deep = format!("{{\"name\": {}{}}}", "[".repeat(50_000), "]".repeat(50_000));
    check(
        &deep,
        &["invalid JSON at line 1, column 136: recursion limit exceeded"],
    );
}

#[test]
fn unknown_keys_suggest_the_right_one_or_its_home() {
    check_field(
        "target.rate_per_sec",
        json!(50),
        &["target.rate_per_sec: unknown key; did you mean \"rate_per_s\"?"],
    );
    check_field(
        "block_s",
        json!(10),
        &["block_s: unknown key; it belongs in `schedule`"],
    );
    check_field(
        "schedule.zzz",
        json!(10),
        &["schedule.zzz: unknown key; the keys here are: cooldown_s, block_s"],
    );
    check_field(
        "apply.files.0.mode",
        json!("0644"),
        &["apply.files[0].mode: unknown key"],
    );
}

#[test]
fn missing_required_fields_say_what_to_add() {
    for (path, want) in [
        (
            "name",
            "name: missing; add it, e.g. \"name\": \"nginx-file-cache\"",
        ),
        ("target", "target: missing; add it"),
        ("target.urls", "target.urls: missing; add it"),
        ("apply", "apply: missing; add it"),
        ("variants", "variants: missing; add \"variants\""),
    ] {
        check(&with(base(), path, None).to_string(), &[want]);
    }
}

#[test]
fn null_means_absent_for_optional_keys_as_in_serde() {
    for key in [
        "apply.validate",
        "apply.reload",
        "apply.health",
        "apply.live_check",
        "apply.command",
        "baseline",
        "matrix",
    ] {
        check_field(key, json!(null), &[]);
    }
    check_field(
        "target.rate_per_s",
        json!(null),
        &["target.rate_per_s: expected a number greater than 0"],
    );
}

#[test]
fn wrong_types_name_what_was_expected() {
    check_field(
        "apply.validate",
        json!("nginx -t"),
        &["apply.validate: expected an array of strings like [\"nginx\", \"-t\"], found a string"],
    );
    check_field(
        "target.urls",
        json!("http://127.0.0.1/"),
        &["target.urls: expected an array of URLs"],
    );
    check_field(
        "target.timeout_ms",
        json!("2s"),
        &["target.timeout_ms: expected a whole number from 1 to 600000, found a string"],
    );
    check_field(
        "schedule.interleave",
        json!("yes"),
        &["schedule.interleave: expected true or false, found a string"],
    );
    check_field(
        "schedule.max_cycles",
        json!(2.5),
        &["schedule.max_cycles: expected a whole number from 1 to 1000, found the fraction 2.5"],
    );
    check_field(
        "target",
        json!([]),
        &["target: expected an object with keys like \"urls\", found an array"],
    );
    check_field(
        "decision.metric",
        json!("p95"),
        &["decision.metric: expected one of \"p50\", \"p90\", \"p99\", \"mean\", found \"p95\""],
    );
    check_field(
        "format_version",
        json!(2),
        &["format_version: this smart reads format_version 1, found 2"],
    );
}

#[test]
fn variant_names_are_checked() {
    check_field(
        "variants.0.name",
        json!(""),
        &["variants[0].name: is empty"],
    );
    check_field(
        "variants.0.name",
        json!("Cache 1K"),
        &[
            "variants[0].name: \"Cache 1K\" may only hold lowercase letters, digits, '-' and '_' (it is used in file names); write \"cache-1k\"",
        ],
    );
    check_field(
        "variants.0.name",
        json!("baseline"),
        &["variants[0].name: \"baseline\" names the configuration as found"],
    );
    check_field(
        "variants.1.name",
        json!("cache-1k"),
        &["variants[1].name: \"cache-1k\" is also the name of variants[0]"],
    );
    check_field("variants", json!([]), &["variants: is empty"]);
    check_field(
        "name",
        json!("file cache"),
        &["name: \"file cache\" may only hold"],
    );
    check_field(
        "name",
        json!("x".repeat(65)),
        &["name: is 65 characters long"],
    );
}

#[test]
fn urls_must_be_http_without_credentials() {
    check_field(
        "target.urls",
        json!(["ftp://127.0.0.1/"]),
        &["target.urls[0]: is a ftp: URL; only http:// and https://"],
    );
    check_field(
        "target.urls",
        json!(["127.0.0.1/"]),
        &["target.urls[0]: is not a valid URL"],
    );
    check_field(
        "target.urls",
        json!(["http://u:p@127.0.0.1/"]),
        &["target.urls[0]: holds a user name or password"],
    );
    check_field("target.urls", json!([]), &["target.urls: is empty"]);
    check_field(
        "apply.health",
        json!({"url": "file:///etc/passwd"}),
        &["apply.health.url: is a file: URL"],
    );
    check_field(
        "apply.health",
        json!({"url": "https://127.0.0.1:8443/health", "timeout_s": 5}),
        &[],
    );
}

#[test]
fn secrets_in_bad_values_are_never_echoed() {
    for (path, value) in [
        ("target.urls", json!(["http://user:s3cret@[::1/"])),
        ("target.urls", json!(["ftp://user:s3cret@127.0.0.1/"])),
        ("target.urls", json!(["http://user:s3cret@127.0.0.1/"])),
        (
            "target.headers",
            json!({"Authorization": "Bearer s3cret\r\nX: 1"}),
        ),
        ("variants.0.params.inactive", json!("s3cret\nuser root;")),
    ] {
        let input = with(base(), path, Some(value));
        let err = validate_text(&input.to_string()).unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }
}

#[test]
fn only_get_and_head_are_allowed() {
    check_field(
        "target.method",
        json!("POST"),
        &[
            "target.method: expected \"GET\" or \"HEAD\", found \"POST\"; a probe must never change server state",
        ],
    );
    check_field(
        "target.method",
        json!("get"),
        &[
            "target.method: expected \"GET\" or \"HEAD\", found \"get\"; write it in capitals: \"GET\"",
        ],
    );
    check_field("target.method", json!("HEAD"), &[]);
}

#[test]
fn headers_must_be_valid_and_single_line() {
    check_field(
        "target.headers",
        json!({"Host": "www.example.com", "Authorization": "Bearer x"}),
        &[],
    );
    check_field(
        "target.headers",
        json!({"X-A": "a\r\nX-Injected: 1"}),
        &["target.headers.X-A: contains the control character U+000D"],
    );
    check_field(
        "target.headers",
        json!({"Bad Name": "x"}),
        &["target.headers[\"Bad Name\"]: is not a valid header name"],
    );
    check_field(
        "target.headers",
        json!({"Host": "a", "host": "b"}),
        &["target.headers.host: repeats the header \"Host\" (header names ignore case)"],
    );
    check_field(
        "target.headers",
        json!({"X-A": 1}),
        &["target.headers.X-A: expected a string, found the number 1"],
    );
}

#[test]
fn rates_and_durations_must_be_positive() {
    check_field(
        "target.rate_per_s",
        json!(0),
        &["target.rate_per_s: expected a number greater than 0 and at most 100000, found 0"],
    );
    check_field(
        "target.rate_per_s",
        json!(-5),
        &["target.rate_per_s: expected a number greater than 0"],
    );
    check_field(
        "target.timeout_ms",
        json!(0),
        &["target.timeout_ms: expected a whole number from 1 to 600000, found 0"],
    );
    for key in ["cooldown_s", "block_s", "soak_s", "max_duration_s"] {
        check_field(
            &format!("schedule.{key}"),
            json!(0),
            &[&format!("schedule.{key}: expected a number greater than 0")],
        );
        check_field(
            &format!("schedule.{key}"),
            json!(-1),
            &[&format!("schedule.{key}: expected a number greater than 0")],
        );
    }
    check_field(
        "schedule.max_cycles",
        json!(0),
        &["schedule.max_cycles: expected a whole number from 1 to 1000, found 0"],
    );
    check_field(
        "guardrails.abort_window_s",
        json!(0),
        &["guardrails.abort_window_s: expected a number greater than 0"],
    );
    check_field(
        "apply.command_timeout_s",
        json!(0),
        &["apply.command_timeout_s: expected a number greater than 0"],
    );
    check_field(
        "apply.health",
        json!({"url": "http://127.0.0.1/", "timeout_s": -1}),
        &["apply.health.timeout_s: expected a number greater than 0"],
    );
}

#[test]
fn percentages_and_confidence_must_be_in_range() {
    check_field(
        "decision.min_improvement_pct",
        json!(100),
        &[
            "decision.min_improvement_pct: expected a number at least 0 and below 100, found 100; an improvement of 100 % or more would mean zero latency",
        ],
    );
    check_field(
        "decision.min_improvement_pct",
        json!(-1),
        &["decision.min_improvement_pct: expected a number at least 0 and below 100"],
    );
    check_field(
        "decision.max_error_increase_pp",
        json!(101),
        &["decision.max_error_increase_pp: expected a number from 0 to 100"],
    );
    check_field(
        "decision.max_error_ratio",
        json!(0.5),
        &["decision.max_error_ratio: expected a number from 1 to 1000000"],
    );
    check_field(
        "guardrails.abort_error_rate_pct",
        json!(0),
        &["guardrails.abort_error_rate_pct: expected a number greater than 0 and at most 100"],
    );
    check_field(
        "guardrails.max_p99_increase_pct",
        json!(-5),
        &["guardrails.max_p99_increase_pct: expected a number greater than 0"],
    );
    check_field(
        "guardrails.max_p99_increase_pct",
        json!("50%"),
        &[
            "guardrails.max_p99_increase_pct: expected a number greater than 0 (or null to turn the check off), found a string",
        ],
    );
    check_field("guardrails.max_p99_increase_pct", json!(null), &[]);
    for bad in [0.0, 1.0, 1.5, -0.5] {
        check_field(
            "decision.confidence",
            json!(bad),
            &["decision.confidence: expected a number greater than 0 and below 1"],
        );
    }
    check_field("decision.confidence", json!(0.99), &[]);
}

#[test]
fn placeholders_need_params_and_params_need_placeholders() {
    check_field(
        "apply.files.0.template",
        json!("open_file_cache max={{ max }} inactive={{ inactiv }};\n"),
        &[
            "apply.files[0].template: line 1, column 40: `{{ inactiv }}` matches no param; did you mean `{{ inactive }}`?",
            "variants[0].params.inactive: param \"inactive\" is used by no template, edit, command or live_check; `{{ inactiv }}` is close",
        ],
    );
    check_field(
        "variants.1.params",
        json!({"max": 10000}),
        &[
            "apply.files[0].template: line 1, column 40: `{{ inactive }}` has no value in variant \"cache-10k\"; add a param \"inactive\" there",
        ],
    );
    check_field(
        "variants.0.params.extra",
        json!(1),
        &[
            "variants[0].params.extra: param \"extra\" is used by no template, edit, command or live_check; remove it, or use it as {{ extra }}",
        ],
    );
    check_field(
        "baseline",
        json!({"max": 100}),
        &[
            "apply.files[0].template: line 1, column 40: `{{ inactive }}` has no value in the baseline",
        ],
    );
    check_field("baseline", json!({"max": 100, "inactive": "10s"}), &[]);
}

#[test]
fn template_syntax_errors_have_line_and_column() {
    check_field(
        "apply.files.0.template",
        json!("# cache\nopen_file_cache max={{ max }} inactive={{ inactive };\n"),
        &["apply.files[0].template: line 2, column 40: `{{` is never closed"],
    );
    check_field(
        "apply.files.0.template",
        json!("open_file_cache max={{ Max }} inactive={{ inactive }};"),
        &["apply.files[0].template: line 1, column 21: `{{ Max }}` is not a placeholder"],
    );
}

#[test]
fn template_syntax_errors_are_reported_alongside_other_problems() {
    let mut input = with(
        base(),
        "apply.files.0.template",
        Some(json!(
            "open_file_cache max={{ max } inactive={{ inactive }};"
        )),
    );
    input = with(input, "apply.reload", Some(json!("nginx -s reload")));
    input = with(
        input,
        "apply.command",
        Some(
            json!({"read": ["cat", "/x"], "set": ["tee", "{{ Max }}"], "revert": ["tee", "{{ original"]}),
        ),
    );
    input = with(
        input,
        "apply.live_check",
        Some(json!({"url": "http://127.0.0.1/", "header": "X-V", "equals": "{{variant}"})),
    );
    check(
        &input.to_string(),
        &[
            "apply.files[0].template: line 1, column 21: `{{ max } inactive={{ inactive }}` is not a placeholder",
            "apply.reload: expected an array of strings",
            "apply.command.set[1]: line 1, column 1: `{{ Max }}` is not a placeholder",
            "apply.command.revert[1]: line 1, column 1: `{{` is never closed",
            "apply.live_check.equals: line 1, column 1: `{{` is never closed",
        ],
    );
}

#[test]
fn single_braces_pass_through_and_variant_is_always_available() {
    check_field(
        "apply.files.0.template",
        json!(
            "server { location / { add_header X-Smart-Variant {{ variant }}; } }\n# {{ max }} {{ inactive }}\n"
        ),
        &[],
    );
    let input = with(
        base(),
        "apply.live_check",
        Some(
            json!({"url": "http://127.0.0.1/", "header": "X-Smart-Variant", "equals": "{{ variant }}"}),
        ),
    );
    let experiment = validate_text(&input.to_string()).unwrap();
    assert_eq!(
        experiment
            .render_text("{{ variant }}", "cache-10k")
            .unwrap()
            .as_deref(),
        Some("cache-10k")
    );
}

#[test]
fn params_are_strings_or_integers_on_one_line() {
    check_field(
        "variants.0.params.inactive",
        json!("20s\nuser root;"),
        &[
            "variants[0].params.inactive: contains a newline at character 4; a value must stay on one line",
        ],
    );
    check_field(
        "variants.0.params.inactive",
        json!("a\u{0}b"),
        &["variants[0].params.inactive: contains the control character U+0000"],
    );
    check_field(
        "variants.0.params.inactive",
        json!("4096\t87380\t6291456"),
        &[],
    );
    check_field(
        "variants.0.params.max",
        json!(0.5),
        &[
            "variants[0].params.max: expected a string or an integer, found the fraction 0.5; write it as a string (\"0.5\")",
        ],
    );
    check_field(
        "variants.0.params.max",
        json!(true),
        &[
            "variants[0].params.max: expected a string or an integer, found the boolean true; booleans render ambiguously",
        ],
    );
    check_field(
        "variants.0.params.max",
        json!(null),
        &["variants[0].params.max: expected a string or an integer, found null"],
    );
    check_field(
        "variants.0.params.Max",
        json!(1),
        &["variants[0].params.Max: \"Max\" is not a param name"],
    );
    check_field(
        "variants.0.params.variant",
        json!("x"),
        &["variants[0].params.variant: \"variant\" is reserved"],
    );
}

#[test]
fn paths_must_be_absolute_and_normal() {
    check_field(
        "apply.files.0.path",
        json!("conf.d/cache.conf"),
        &["apply.files[0].path: \"conf.d/cache.conf\" is relative; give the absolute path"],
    );
    check_field(
        "apply.files.0.path",
        json!("/etc/nginx/../shadow"),
        &["apply.files[0].path: \"/etc/nginx/../shadow\" is not in normal form"],
    );
    check_field(
        "apply.files.0.path",
        json!("/etc/nginx/"),
        &["apply.files[0].path: \"/etc/nginx/\" names a directory"],
    );
    let two = json!([
        {"path": "/etc/a.conf", "template": "a {{ max }} {{ inactive }}"},
        {"path": "/etc/a.conf", "template": "b"}
    ]);
    check_field(
        "apply.files",
        two,
        &["apply.files[1].path: is the same file as apply.files[0].path"],
    );
}

#[test]
fn a_file_has_exactly_one_content_source() {
    check_field(
        "apply.files.0",
        json!({"path": "/etc/a.conf"}),
        &["apply.files[0]: says nothing about the file's content"],
    );
    check_field(
        "apply.files.0",
        json!({"path": "/etc/a.conf", "template": "{{ max }} {{ inactive }}", "edit": {"pattern": "^a$", "replace": "a"}}),
        &["apply.files[0]: gives template and edit; give only one of"],
    );
    check_field(
        "apply.files",
        json!([]),
        &["apply: changes nothing; give \"files\""],
    );
}

#[test]
fn edits_need_a_valid_pattern_and_one_line() {
    let edit = |pattern: &str, replace: &str| json!({"path": "/etc/nginx/nginx.conf", "edit": {"pattern": pattern, "replace": replace}});
    check_field(
        "apply.files.0",
        edit(
            "^open_file_cache .*;$",
            "open_file_cache max={{ max }} inactive={{ inactive }};",
        ),
        &[],
    );
    check_field(
        "apply.files.0",
        edit("^open_file_cache (.*;$", "x {{ max }} {{ inactive }}"),
        &["apply.files[0].edit.pattern: is not a valid regex: unclosed group"],
    );
    check_field(
        "apply.files.0",
        edit("", "x {{ max }} {{ inactive }}"),
        &["apply.files[0].edit.pattern: is empty"],
    );
    check_field(
        "apply.files.0",
        edit("^x$", "x {{ max }}\ny {{ inactive }}"),
        &["apply.files[0].edit.replace: contains a line break"],
    );
}

#[test]
fn commands_are_argv_vectors_never_shell_strings() {
    check_field(
        "apply.reload",
        json!("systemctl reload nginx"),
        &[
            "apply.reload: expected an array of strings like [\"nginx\", \"-s\", \"reload\"], found a string",
        ],
    );
    check_field(
        "apply.reload",
        json!(["systemctl reload nginx"]),
        &[
            "apply.reload: looks like a shell command line; commands run without a shell, so give each word as its own string: [\"systemctl\", \"reload\", \"nginx\"]",
        ],
    );
    check_field(
        "apply.reload",
        json!(["sh", "-c", "nginx -s reload"]),
        &["apply.reload: runs a shell string through sh -c"],
    );
    check_field(
        "apply.reload",
        json!(["/bin/bash", "-ec", "x"]),
        &["apply.reload: runs a shell string through bash -c"],
    );
    check_field("apply.reload", json!([]), &["apply.reload: is empty"]);
    check_field(
        "apply.validate",
        json!(["nginx", 5]),
        &["apply.validate[1]: expected a string, found the number 5"],
    );
    check_field(
        "apply.validate",
        json!(["nginx", "-c", "{{ max }}"]),
        &["apply.validate[2]: is not rendered, so it cannot hold placeholders"],
    );
}

#[test]
fn the_command_applier_needs_a_way_back() {
    let command = |set: serde_json::Value, revert: Option<serde_json::Value>| {
        let mut c = json!({"read": ["sysctl", "-n", "net.core.somaxconn"], "set": set});
        if let Some(revert) = revert {
            c["revert"] = revert;
        }
        let mut input = with(base(), "apply.files", None);
        input = with(input, "apply.command", Some(c));
        input = with(
            input,
            "variants",
            Some(json!([{"name": "big", "params": {"somaxconn": 4096}}])),
        );
        input.to_string()
    };
    check(
        &command(
            json!(["sysctl", "-w", "net.core.somaxconn={{ somaxconn }}"]),
            None,
        ),
        &[],
    );
    check(
        &command(
            json!(["sysctl", "-w", "net.core.somaxconn={{ somaxconn }}"]),
            Some(json!(["sysctl", "-w", "net.core.somaxconn={{ original }}"])),
        ),
        &[],
    );
    check(
        &command(json!(["sysctl", "-w", "net.core.somaxconn=4096"]), None),
        &[
            "apply.command.set: without a \"revert\", set is re-run with the captured value in place of its one param, so it must use exactly one param (it uses none)",
            "variants[0].params.somaxconn: param",
        ],
    );
    check(
        &command(
            json!(["sysctl", "-w", "net.core.somaxconn={{ somaxconn }}"]),
            Some(json!(["sysctl", "-w", "x={{ somaxconn }}"])),
        ),
        &[
            "apply.command.revert[2]: line 1, column 3: `{{ somaxconn }}` is not available in a revert",
        ],
    );
    check(
        &command(
            json!(["sysctl", "-w", "net.core.somaxconn={{ original }}"]),
            None,
        ),
        &[
            "apply.command.set[2]: line 1, column 20: `{{ original }}` is only available in apply.command.revert",
            "apply.command.set: without a \"revert\"",
            "variants[0].params.somaxconn: param",
        ],
    );
    check(
        &command(json!("sysctl -w net.core.somaxconn={{ somaxconn }}"), None),
        &[
            "apply.command.set: expected an array of strings like [\"sysctl\", \"-w\", \"net.core.somaxconn={{ somaxconn }}\"], found a string",
        ],
    );
}

#[test]
fn a_matrix_expands_and_is_checked() {
    let input = with(
        with(base(), "variants", None),
        "matrix",
        Some(json!({"max": [1000, 10000], "inactive": ["20s"]})),
    );
    let experiment = validate_text(&input.to_string()).unwrap();
    let names: Vec<&str> = experiment
        .variants()
        .iter()
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(names, ["inactive-20s_max-1000", "inactive-20s_max-10000"]);
    let both = with(base(), "matrix", Some(json!({"max": [1]})));
    check(
        &both.to_string(),
        &["matrix: given together with \"variants\""],
    );
    let empty = with(
        with(base(), "variants", None),
        "matrix",
        Some(json!({"max": [], "inactive": ["1s", "1s"]})),
    );
    check(
        &empty.to_string(),
        &[
            "matrix.max: is empty",
            "matrix.inactive[1]: repeats matrix.inactive[0]",
        ],
    );
    let unused = with(
        with(base(), "variants", None),
        "matrix",
        Some(json!({"max": [1], "inactive": ["1s"], "other": [1]})),
    );
    check(
        &unused.to_string(),
        &["matrix.other: param \"other\" is used by no template"],
    );
    let huge: serde_json::Value = (0..8)
        .map(|i| (format!("p{i}"), json!([1, 2])))
        .collect::<serde_json::Map<_, _>>()
        .into();
    check(
        &with(with(base(), "variants", None), "matrix", Some(huge)).to_string(),
        &["matrix: expands to 2 × 2 × 2 × 2 × 2 × 2 × 2 × 2 variants, more than 100"],
    );
}

#[test]
fn json_files_must_render_to_json() {
    let flags = json!([{"path": "/etc/app/flags.json", "template": "{\"cache\": {\"max\": {{ max }}, \"inactive\": \"{{ inactive }}\"}}\n"}]);
    check_field("apply.files", flags, &[]);
    let unquoted = json!([{"path": "/etc/app/flags.json", "template": "{\"max\": {{ max }}, \"inactive\": {{ inactive }}}"}]);
    check_field(
        "apply.files",
        unquoted,
        &[
            "apply.files[0].template: renders to invalid JSON for variant \"cache-1k\"",
            "apply.files[0].template: renders to invalid JSON for variant \"cache-10k\"",
        ],
    );
}

#[test]
fn live_check_is_a_template_on_a_real_header() {
    check_field(
        "apply.live_check",
        json!({"url": "http://127.0.0.1/", "header": "X-Smart-Variant", "equals": "{{ variant }}-{{ max }}"}),
        &[],
    );
    check_field(
        "apply.live_check",
        json!({"url": "http://127.0.0.1/", "header": "X Smart", "equals": "{{ variant }}"}),
        &["apply.live_check.header: is not a valid header name"],
    );
    check_field(
        "apply.live_check",
        json!({"url": "http://127.0.0.1/", "header": "X-Smart", "equals": "{{ nope }}"}),
        &["apply.live_check.equals: line 1, column 1: `{{ nope }}` matches no param"],
    );
}

#[test]
fn schedules_longer_than_max_duration_are_rejected() {
    let long = with(
        base(),
        "schedule",
        Some(json!({"block_s": 60, "max_cycles": 20, "max_duration_s": 3600})),
    );
    check(
        &long.to_string(),
        &[
            "schedule.max_duration_s: the worst case for 2 variant(s) is 10360 s (2h 52m), more than max_duration_s 3600; raise max_duration_s to at least 10360",
        ],
    );
    let fits = with(
        base(),
        "schedule",
        Some(json!({"block_s": 60, "max_cycles": 20, "max_duration_s": 10360})),
    );
    check(&fits.to_string(), &[]);
}

#[test]
fn files_over_one_mebibyte_are_rejected_before_parsing() {
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(1024 * 1024));
    check(
        &big,
        &["is 1048588 bytes, more than the limit of 1048576 bytes (1 MiB)"],
    );
}

#[test]
fn template_files_are_read_relative_to_the_experiment() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("templates")).unwrap();
    std::fs::write(
        dir.path().join("templates/cache.conf"),
        "open_file_cache max={{ max }}\n    inactive={{ inactiv }};\n",
    )
    .unwrap();
    let input = with(
        base(),
        "apply.files.0",
        Some(json!({"path": "/etc/nginx/conf.d/c.conf", "template_file": "templates/cache.conf"})),
    );
    let file = dir.path().join("cache.json");
    std::fs::write(&file, input.to_string()).unwrap();
    let err =
        smart_core::validate::validate_file(&file, &smart_core::Defaults::default()).unwrap_err();
    let lines: Vec<String> = err.problems().iter().map(|p| p.to_string()).collect();
    let template = dir.path().join("templates/cache.conf");
    assert_eq!(
        lines[0],
        format!(
            "apply.files[0].template_file: line 2, column 14 of {}: `{{{{ inactiv }}}}` matches no param; did you mean `{{{{ inactive }}}}`? Or add a param \"inactiv\" to every variant (and the baseline, if given)",
            template.display()
        )
    );
    std::fs::write(
        &template,
        "open_file_cache max={{ max }} inactive={{ inactive }};\n",
    )
    .unwrap();
    let experiment =
        smart_core::validate::validate_file(&file, &smart_core::Defaults::default()).unwrap();
    let spec = &experiment.apply().files[0];
    assert_eq!(
        spec.template.as_deref(),
        Some("open_file_cache max={{ max }} inactive={{ inactive }};\n")
    );
    assert_eq!(spec.template_file, None);
    let hash = experiment.definition_hash().to_owned();
    std::fs::write(
        &template,
        "open_file_cache max={{ max }} inactive={{ inactive }}; # v2\n",
    )
    .unwrap();
    let changed =
        smart_core::validate::validate_file(&file, &smart_core::Defaults::default()).unwrap();
    assert_ne!(
        changed.definition_hash(),
        hash,
        "a template file's content is part of the definition"
    );

    // Template files are capped in total, so rendering every arm stays quick.
    let chunk = format!(
        "{}{{{{ max }}}} {{{{ inactive }}}}\n",
        "#".repeat(1000 * 1024)
    );
    std::fs::write(&template, &chunk).unwrap();
    let many: Vec<_> = (0..5)
        .map(|i| {
            json!({"path": format!("/etc/nginx/conf.d/c{i}.conf"), "template_file": "templates/cache.conf"})
        })
        .collect();
    let input_many = with(input.clone(), "apply.files", Some(json!(many)));
    std::fs::write(&file, input_many.to_string()).unwrap();
    let err =
        smart_core::validate::validate_file(&file, &smart_core::Defaults::default()).unwrap_err();
    assert_eq!(err.problems().len(), 1, "{err}");
    assert!(
        err.to_string().contains(
            "apply.files[4].template_file: brings the template files to more than 4194304 bytes"
        ),
        "{err}"
    );

    let missing = with(
        input,
        "apply.files.0.template_file",
        Some(json!("nope.conf")),
    );
    std::fs::write(&file, missing.to_string()).unwrap();
    let err =
        smart_core::validate::validate_file(&file, &smart_core::Defaults::default()).unwrap_err();
    assert!(
        err.problems()[0].message().contains("cannot read the file"),
        "{err}"
    );
    assert_eq!(err.problems()[0].field(), "apply.files[0].template_file");
}

#[test]
fn defaults_from_smart_toml_fill_unset_keys_and_are_checked_together() {
    let config = smart_core::AgentConfig::from_toml(
        "[defaults.schedule]\nblock_s = 20\nmax_duration_s = 600\n",
        std::path::Path::new("smart.toml"),
    )
    .unwrap();
    let text = with(base(), "schedule", Some(json!({"max_cycles": 2}))).to_string();
    let source = std::path::Path::new("x.json");
    let experiment = smart_core::validate::validate_text(&text, source, config.defaults()).unwrap();
    assert_eq!(experiment.schedule().block_s, 20.0);
    assert_eq!(experiment.schedule().max_cycles, 2);
    let too_long = with(base(), "schedule", Some(json!({"max_cycles": 8}))).to_string();
    let err =
        smart_core::validate::validate_text(&too_long, source, config.defaults()).unwrap_err();
    assert_eq!(err.problems()[0].field(), "schedule.max_duration_s");
}

#[test]
fn the_definition_hash_ignores_formatting_and_sees_changes() {
    let a = validate_text(&base().to_string()).unwrap();
    let b = validate_text(&serde_json::to_string_pretty(&base()).unwrap()).unwrap();
    assert_eq!(a.definition_hash(), b.definition_hash());
    assert_eq!(a.definition_hash().len(), 64);
    let explicit_default = with(base(), "schedule.block_s", Some(json!(10)));
    let c = validate_text(&explicit_default.to_string()).unwrap();
    assert_eq!(
        a.definition_hash(),
        c.definition_hash(),
        "writing a default changes nothing"
    );
    let changed = with(base(), "variants.0.params.max", Some(json!(1001)));
    let d = validate_text(&changed.to_string()).unwrap();
    assert_ne!(a.definition_hash(), d.definition_hash());
}

#[test]
fn the_experiment_gives_arms_and_durations() {
    let e = validate_text(&base().to_string()).unwrap();
    assert_eq!(e.name(), "file-cache");
    assert_eq!(e.variants().len(), 2);
    assert_eq!(
        e.arm_values(smart_core::BASELINE),
        None,
        "the baseline is the config as found"
    );
    let values = e.arm_values("cache-1k").unwrap();
    assert_eq!(values["max"], "1000");
    assert_eq!(values["variant"], "cache-1k");
    assert_eq!(
        e.render(&e.apply().files[0], "cache-10k")
            .unwrap()
            .as_deref(),
        Some("open_file_cache max=10000 inactive=60s;\n")
    );
    assert_eq!(e.render_text("x", "nope").unwrap(), None);
    // 2 variants × (14 × 4 × 10 s + 43 × 5 s) + 30 s validate + 120 s soak.
    assert_eq!(
        e.durations().worst_case_s,
        30.0 + 2.0 * (560.0 + 215.0) + 120.0
    );
}

#[test]
fn names_are_unique_across_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.json"), base().to_string()).unwrap();
    std::fs::write(dir.path().join("b.json"), base().to_string()).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not an experiment").unwrap();
    let report = smart_core::validate::validate_paths(
        &[dir.path().to_owned()],
        &smart_core::Defaults::default(),
    );
    assert_eq!(report.experiments.len(), 1);
    assert_eq!(report.invalid.len(), 1);
    assert!(
        report.invalid[0]
            .to_string()
            .contains("b.json: name: \"file-cache\" is also the name of the experiment in"),
        "{}",
        report.invalid[0]
    );
}

#[test]
fn the_run_window_in_smart_toml_is_read_and_checked() {
    let read =
        |text: &str| smart_core::AgentConfig::from_toml(text, std::path::Path::new("smart.toml"));
    let config = read("run_window = \"22:00-04:00 UTC\"\n").unwrap();
    assert_eq!(
        config.run_window().map(|w| w.to_string()).as_deref(),
        Some("22:00-04:00 UTC")
    );
    assert_eq!(read("").unwrap().run_window(), None);
    let err = read("run_window = \"02:00-06:00\"\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "smart.toml: run_window: \"02:00-06:00\" has no time zone; write it like \"02:00-06:00 UTC\" \
         (the times are UTC: smart reads no local time zone)"
    );
    let misplaced = read("[logs]\nrun_window = \"02:00-06:00 UTC\"\n").unwrap_err();
    assert_eq!(misplaced.problems()[0].field(), "logs.run_window");
}
