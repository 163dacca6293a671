//! The HTTP checks: health polling, the live check, and "is the service running at all".

use std::time::Duration;

use tokio::time::Instant;

/// How often a failing check is retried until its deadline.
const POLL: Duration = Duration::from_millis(100);

/// How long one request of a check may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// A loopback-friendly client: no proxy (a proxy from the environment must never see config
/// checks), a short connect timeout.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(REQUEST_TIMEOUT)
        .build()
        .expect("a plain rustls client always builds")
}

/// What a live check expects of the header once the arm serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expect {
    /// The header must equal this value (a rendered arm).
    Equals(String),
    /// The header must say exactly what it said on the configuration as found (`None`: absent).
    Found(Option<String>),
    /// The header must be absent or equal none of these values: the configuration as found, for
    /// runs recorded before smart observed its header.
    NotAny(Vec<String>),
}

impl Expect {
    /// For the audit log.
    pub(crate) fn describe(&self) -> String {
        match self {
            Expect::Equals(v) => format!("equals `{v}`"),
            Expect::Found(Some(v)) => format!("equals `{v}`, as on the configuration as found"),
            Expect::Found(None) => "absent, as on the configuration as found".to_owned(),
            Expect::NotAny(vs) => format!("absent or none of {vs:?}"),
        }
    }
}

/// Polls `url` until its status is in `ok_status` or `timeout` passes; the error says what the
/// last attempt saw.
pub(crate) async fn health(
    client: &reqwest::Client,
    url: &str,
    ok_status: &[u16],
    timeout: Duration,
) -> Result<u16, String> {
    poll(timeout, || async {
        let response = get(client, url).await?;
        let status = response.status().as_u16();
        if ok_status.contains(&status) {
            Ok(status)
        } else {
            Err(format!("status {status}, expected one of {ok_status:?}"))
        }
    })
    .await
}

/// How many answers in a row, each over a fresh connection, must show the expected header
/// before a live check passes. After a reload an old worker may still answer a connection or
/// two with the previous config (seen with nginx: one answer from an old worker right after a
/// recover said "checked"); one answer proves nothing about the next.
pub(crate) const LIVE_CONFIRMATIONS: u32 = 5;

/// The pause between confirming answers.
const CONFIRM_GAP: Duration = Duration::from_millis(50);

/// Polls `url` until `header` meets `expect` on [`LIVE_CONFIRMATIONS`] answers in a row, each
/// over a fresh connection (a pooled one would keep talking to the same, possibly old, worker),
/// or `timeout` passes.
pub(crate) async fn live_check(
    url: &str,
    header: &str,
    expect: &Expect,
    timeout: Duration,
) -> Result<Option<String>, String> {
    let fresh = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(0)
        .build()
        .map_err(|e| error_chain(&e))?;
    let deadline = Instant::now() + timeout;
    let mut streak = 0;
    // The last wrong answer: what the error reports, even when the deadline then cuts a request.
    let mut wrong: Option<String> = None;
    loop {
        let last =
            match tokio::time::timeout_at(deadline, answer(&fresh, url, header, expect)).await {
                Ok(Ok(value)) => {
                    streak += 1;
                    if streak >= LIVE_CONFIRMATIONS {
                        return Ok(value);
                    }
                    tokio::time::sleep(CONFIRM_GAP).await;
                    continue;
                }
                Ok(Err(e)) => {
                    wrong = Some(e.clone());
                    e
                }
                Err(_) => wrong.as_ref().map_or_else(
                    || "no answer".to_owned(),
                    |w| format!("{w}, then no answer"),
                ),
            };
        let seen = if streak > 0 {
            format!(
                " (after {streak} good answer{} in a row)",
                if streak == 1 { "" } else { "s" }
            )
        } else {
            String::new()
        };
        streak = 0;
        if Instant::now() + POLL >= deadline {
            return Err(format!(
                "{last}{seen} (gave up after {} s; {LIVE_CONFIRMATIONS} good answers in a row over fresh connections are needed)",
                timeout.as_secs_f64()
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// One live-check answer: the header's value if it meets `expect`, else what is wrong.
async fn answer(
    client: &reqwest::Client,
    url: &str,
    header: &str,
    expect: &Expect,
) -> Result<Option<String>, String> {
    let response = client
        .get(url)
        .header(reqwest::header::CONNECTION, "close")
        .timeout(REQUEST_TIMEOUT)
        .send()
        .await
        .map_err(|e| error_chain(&e))?;
    let value = response
        .headers()
        .get(header)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let ok = match (expect, &value) {
        (Expect::Equals(want), Some(got)) => got == want,
        (Expect::Equals(_), None) => false,
        (Expect::Found(want), got) => want == got,
        (Expect::NotAny(old), Some(got)) => !old.contains(got),
        (Expect::NotAny(_), None) => true,
    };
    if ok {
        return Ok(value);
    }
    let got = value.map_or_else(|| "no such header".to_owned(), |v| format!("`{v}`"));
    Err(match expect {
        Expect::Equals(want) => format!("{header} is {got}, expected `{want}`"),
        Expect::Found(want) => format!(
            "{header} is {got}, but the configuration as found sent {}: the original is not serving",
            want.as_ref()
                .map_or_else(|| "no such header".to_owned(), |v| format!("`{v}`"))
        ),
        Expect::NotAny(_) => format!("{header} is {got}: a variant still serves"),
    })
}

/// Reads `header` from one answer of `url` (`None`: the answer did not carry it).
pub(crate) async fn header_value(
    client: &reqwest::Client,
    url: &str,
    header: &str,
) -> Result<Option<String>, String> {
    let response = get(client, url).await?;
    Ok(response
        .headers()
        .get(header)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()))
}

/// Whether anything answers HTTP at `url` (any status): used by recovery to tell whether the
/// service runs, so that at boot it neither reloads nor health-checks a stopped service.
pub(crate) async fn answers(client: &reqwest::Client, url: &str) -> bool {
    get(client, url).await.is_ok()
}

async fn get(client: &reqwest::Client, url: &str) -> Result<reqwest::Response, String> {
    client
        .get(url)
        .timeout(REQUEST_TIMEOUT)
        .send()
        .await
        .map_err(|e| error_chain(&e))
}

async fn poll<T, F, Fut>(timeout: Duration, mut attempt: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let last = match tokio::time::timeout_at(deadline, attempt()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) => e,
            Err(_) => "no answer".to_owned(),
        };
        if Instant::now() + POLL >= deadline {
            return Err(format!(
                "{last} (gave up after {} s)",
                timeout.as_secs_f64()
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

use smart_core::error_chain::joined as error_chain;

/// `url` with any `user:password@` replaced by `***@`, for logs.
pub(crate) use smart_core::redact::hide_url_credentials as redact;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials_in_urls() {
        let check = |url: &str, want: &str| assert_eq!(redact(url), want);
        check("http://127.0.0.1/", "http://127.0.0.1/");
        check(
            "http://u:p@127.0.0.1:80/x?y@z",
            "http://***@127.0.0.1:80/x?y@z",
        );
        check("https://tok@h/", "https://***@h/");
        check("not a url", "not a url");
    }

    #[tokio::test]
    async fn a_closed_port_is_unhealthy_and_not_running() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/");
        let c = client();
        assert!(!answers(&c, &url).await);
        let err = health(&c, &url, &[200], Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(err.contains("gave up"), "{err}");
    }

    /// A server answering each connection with the next `X-Arm` value of `script` (the last one
    /// repeats), counting connections and requests.
    fn scripted(
        script: Vec<&'static str>,
    ) -> (String, std::sync::Arc<std::sync::Mutex<(u32, u32)>>) {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let counts = std::sync::Arc::new(std::sync::Mutex::new((0u32, 0u32)));
        let seen = counts.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let n = {
                    let mut c = seen.lock().unwrap();
                    c.0 += 1;
                    c.0 as usize
                };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                // Every request on this connection gets the same answer, as one worker would give.
                loop {
                    let mut line = String::new();
                    let mut blank = false;
                    while reader.read_line(&mut line).map(|r| r > 0).unwrap_or(false) {
                        if line == "\r\n" {
                            blank = true;
                            break;
                        }
                        line.clear();
                    }
                    if !blank {
                        break;
                    }
                    seen.lock().unwrap().1 += 1;
                    let arm = script[(n - 1).min(script.len() - 1)];
                    let body =
                        format!("HTTP/1.1 200 OK\r\nX-Arm: {arm}\r\nContent-Length: 0\r\n\r\n");
                    if stream.write_all(body.as_bytes()).is_err() {
                        break;
                    }
                }
            }
        });
        (url, counts)
    }

    #[tokio::test]
    async fn one_good_answer_is_not_enough_after_a_restore() {
        let found = Expect::Found(Some("orig".to_owned()));
        // The original answers once, then an old worker keeps answering with the variant.
        let (url, _) = scripted(vec!["orig", "variant"]);
        let err = live_check(&url, "X-Arm", &found, Duration::from_millis(1500))
            .await
            .unwrap_err();
        assert!(err.contains("X-Arm is `variant`"), "{err}");
        assert!(err.contains("5 good answers in a row"), "{err}");
    }

    #[tokio::test]
    async fn the_check_passes_once_the_original_answers_in_a_row_over_fresh_connections() {
        let found = Expect::Found(Some("orig".to_owned()));
        // Old (the variant), then new (the original), with one straggler from an old worker.
        let (url, counts) = scripted(vec!["variant", "variant", "orig", "variant", "orig"]);
        let value = live_check(&url, "X-Arm", &found, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(value.as_deref(), Some("orig"));
        let (connections, requests) = *counts.lock().unwrap();
        // 4 answers before the streak, then 5 in a row: every one on its own connection.
        assert_eq!(
            requests,
            4 + LIVE_CONFIRMATIONS,
            "{connections} connections"
        );
        assert_eq!(
            connections, requests,
            "each answer must come over a fresh connection"
        );
    }
}
