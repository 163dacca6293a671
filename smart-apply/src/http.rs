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

/// Polls `url` until `header` meets `expect` or `timeout` passes.
pub(crate) async fn live_check(
    client: &reqwest::Client,
    url: &str,
    header: &str,
    expect: &Expect,
    timeout: Duration,
) -> Result<Option<String>, String> {
    poll(timeout, || async {
        let response = get(client, url).await?;
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
            Ok(value)
        } else {
            let got = value.map_or_else(|| "no such header".to_owned(), |v| format!("`{v}`"));
            Err(match expect {
                Expect::Equals(want) => format!("{header} is {got}, expected `{want}`"),
                Expect::Found(want) => format!(
                    "{header} is {got}, but the configuration as found sent {}: the original is not serving",
                    want.as_ref()
                        .map_or_else(|| "no such header".to_owned(), |v| format!("`{v}`"))
                ),
                Expect::NotAny(_) => {
                    format!("{header} is {got}: a variant still serves")
                }
            })
        }
    })
    .await
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

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// `url` with any `user:password@` replaced by `***@`, for logs.
pub(crate) fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..scheme_end + 3], &rest[at..]),
        None => url.to_owned(),
    }
}

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
}
