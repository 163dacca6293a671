//! Reads the output of `nginx -T` (every config file nginx loaded, each after a
//! `# configuration file PATH:` line) into what an experiment needs: where the site listens,
//! which file holds it, and which directory `http {}` includes `*.conf` files from, where an
//! experiment can own a file of its own. Pure: no I/O, so it is tested on captured dumps.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The header `nginx -T` writes before each file it loaded.
const FILE_HEADER: &str = "# configuration file ";
/// How deep `include`s may nest before the dump is taken for a loop.
const MAX_INCLUDE_DEPTH: usize = 16;

/// What went wrong reading a dump.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The text has no `# configuration file PATH:` line: it is not `nginx -T` output.
    #[error(
        "the output holds no `# configuration file PATH:` line, so it is not what `nginx -T` prints"
    )]
    NotADump,
    /// No `server {}` in `http {}` listens on a TCP port smart can reach over plain HTTP.
    #[error(
        "no server {{}} in http {{}} listens on a TCP port over plain HTTP (only TLS, QUIC or unix sockets, or no server at all)"
    )]
    NoHttpServer,
}

/// One `listen` of a server, as nginx reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    /// The address as written (`127.0.0.1`, `[::]`, `localhost`), or `None` for all addresses
    /// (`listen 80`, `listen *:80`, `listen 0.0.0.0:80`).
    pub address: Option<String>,
    /// The TCP port.
    pub port: u16,
    /// `default_server` was given.
    pub default_server: bool,
}

impl Listen {
    /// The host to reach this listen on from the machine itself: loopback for a wildcard.
    pub fn local_host(&self) -> String {
        match self.address.as_deref() {
            None => "127.0.0.1".to_owned(),
            Some("[::]") => "[::1]".to_owned(),
            Some(address) => address.to_owned(),
        }
    }

    /// `http://HOST[:PORT]/` (the port left out when it is 80).
    pub fn url(&self) -> String {
        if self.port == 80 {
            format!("http://{}/", self.local_host())
        } else {
            format!("http://{}:{}/", self.local_host(), self.port)
        }
    }
}

/// The site an experiment measures: one `listen` of one `server {}` and the file it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// The listen chosen (see [`parse_dump`]).
    pub listen: Listen,
    /// The file holding the `server {}` block.
    pub file: PathBuf,
}

/// Where a directive sits: the main context, `events {}` or `http {}` (directives inside
/// `server {}` and deeper are not recorded: they tune one site, not the server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// Outside every block (`worker_processes`).
    Main,
    /// Inside `events {}` (`worker_connections`).
    Events,
    /// Directly inside `http {}` (`gzip`, `sendfile`, `keepalive_timeout`, ...).
    Http,
}

/// One directive of the main, `events {}` or `http {}` context, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The directive's name.
    pub name: String,
    /// Its arguments, unquoted.
    pub args: Vec<String>,
    /// The block it is in.
    pub context: Context,
    /// The file it is written in.
    pub file: PathBuf,
    /// The line (from 1) its name is on.
    pub line: usize,
    /// How to replace it with a files applier's `edit`, when it can be: see [`LineEdit`].
    pub edit: Option<LineEdit>,
}

/// A one-line edit that replaces a directive in its file: `pattern` matches that line and no
/// other line of the file (as the dump shows it), and the directive is alone on it (a trailing
/// comment aside), so the line can be rewritten whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineEdit {
    /// A regex matching exactly that line.
    pub pattern: String,
    /// The line's leading whitespace, to keep in the replacement.
    pub indent: String,
}

/// What a dump says, as far as an experiment needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dump {
    /// The main config file (the dump's first file).
    pub main_config: PathBuf,
    /// The site to measure.
    pub site: Site,
    /// The `include` patterns directly inside `http {}` that hold a wildcard, absolute, in the
    /// order written: a file an experiment creates where one matches is loaded inside `http {}`.
    pub http_includes: Vec<PathBuf>,
    /// Every directive of the main, `events {}` and `http {}` contexts, in the order nginx reads
    /// them.
    pub settings: Vec<Setting>,
}

impl Dump {
    /// Where a new file named `name` is loaded inside `http {}`: the directory of the first
    /// wildcard `include` in `http {}` whose pattern matches `DIR/name`, with the pattern.
    pub fn drop_in(&self, name: &str) -> Option<(PathBuf, &Path)> {
        self.http_includes.iter().find_map(|pattern| {
            let dir = pattern.parent()?;
            let file = dir.join(name);
            glob_match(&pattern.to_string_lossy(), &file.to_string_lossy())
                .then_some((file, pattern.as_path()))
        })
    }

    /// The directive `name` of `context`, when it is written there exactly once.
    pub fn setting(&self, context: Context, name: &str) -> Option<&Setting> {
        let mut found = self
            .settings
            .iter()
            .filter(|s| s.context == context && s.name == name);
        let first = found.next()?;
        found.next().is_none().then_some(first)
    }
}

/// Reads `nginx -T` output (stdout).
///
/// The site chosen is the first plain-HTTP TCP `listen` marked `default_server`, else the first
/// plain-HTTP TCP `listen` at all, in the order nginx loads the files; an IPv4 or wildcard
/// address wins over an IPv6-only one, since the probe reaches `127.0.0.1`. A `server {}` without
/// `listen` listens on `*:80`, as nginx does when run as root. Relative `include` paths resolve
/// against the main config's directory (nginx's conf prefix).
pub fn parse_dump(text: &str) -> Result<Dump, ParseError> {
    let files = split_files(text);
    let Some((main, _)) = files.first() else {
        return Err(ParseError::NotADump);
    };
    let main_config = PathBuf::from(main);
    let prefix = main_config
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    let parsed: BTreeMap<&str, Vec<Directive>> = files
        .iter()
        .map(|(path, body)| (path.as_str(), parse_block(&mut tokens(body).into_iter())))
        .collect();
    let bodies: BTreeMap<&str, &str> = files
        .iter()
        .map(|(path, body)| (path.as_str(), body.as_str()))
        .collect();
    let order: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    let mut walk = Walk {
        files: &parsed,
        bodies: &bodies,
        order: &order,
        prefix: &prefix,
        servers: Vec::new(),
        http_includes: Vec::new(),
        settings: Vec::new(),
    };
    if let Some(directives) = parsed.get(main.as_str()) {
        walk.block(directives, main, &[], 0);
    }
    let site = choose(&walk.servers).ok_or(ParseError::NoHttpServer)?;
    Ok(Dump {
        main_config,
        site,
        http_includes: walk.http_includes,
        settings: walk.settings,
    })
}

/// The edit that rewrites the directive `name` on line `line` of `body`, if it stands alone on
/// that line and no other line of the file matches the same pattern.
fn line_edit(body: &str, name: &str, line: usize) -> Option<LineEdit> {
    let text = body.lines().nth(line.checked_sub(1)?)?;
    let code = text.split('#').next().unwrap_or("").trim();
    let alone = code.starts_with(name)
        && code[name.len()..].starts_with(char::is_whitespace)
        && code.ends_with(';')
        && code.matches(';').count() == 1
        && !code.contains(['{', '}', '"', '\'']);
    if !alone {
        return None;
    }
    let pattern = format!("^\\s*{}\\s[^;#]*;\\s*(#.*)?$", regex::escape(name));
    let regex = regex::Regex::new(&pattern).ok()?;
    (body.lines().filter(|l| regex.is_match(l)).count() == 1).then(|| LineEdit {
        pattern,
        indent: text[..text.len() - text.trim_start().len()].to_owned(),
    })
}

/// The dump cut into `(path, text)` per file, in the order nginx printed them.
fn split_files(text: &str) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(path) = line
            .strip_prefix(FILE_HEADER)
            .and_then(|rest| rest.strip_suffix(':'))
        {
            files.push((path.to_owned(), String::new()));
        } else if let Some((_, body)) = files.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    files
}

/// One directive: its words, the line its name is on, and its block when it has one.
#[derive(Debug)]
struct Directive {
    words: Vec<String>,
    line: usize,
    block: Option<Vec<Directive>>,
}

#[derive(Debug, PartialEq)]
enum Token {
    /// A word and the line (from 1) it starts on.
    Word(String, usize),
    Semicolon,
    Open,
    Close,
}

/// nginx's lexical syntax: words (quotes and backslash escapes honoured), `;`, `{`, `}`, and
/// comments from `#` to the end of the line.
fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            c if c.is_whitespace() => {}
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                        break;
                    }
                }
            }
            ';' => out.push(Token::Semicolon),
            '{' => out.push(Token::Open),
            '}' => out.push(Token::Close),
            quote @ ('"' | '\'') => {
                let start = line;
                let mut word = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => word.extend(chars.next()),
                        c if c == quote => break,
                        other => {
                            line += usize::from(other == '\n');
                            word.push(other);
                        }
                    }
                }
                out.push(Token::Word(word, start));
            }
            first => {
                let mut word = String::from(first);
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || matches!(c, ';' | '{' | '}') {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                out.push(Token::Word(word, line));
            }
        }
    }
    out
}

/// Directives up to the end of the input or the `}` that closes this block.
fn parse_block(tokens: &mut impl Iterator<Item = Token>) -> Vec<Directive> {
    let mut out = Vec::new();
    let mut words = Vec::new();
    let mut first_line = 0;
    while let Some(token) = tokens.next() {
        match token {
            Token::Word(w, line) => {
                if words.is_empty() {
                    first_line = line;
                }
                words.push(w);
            }
            Token::Semicolon => out.push(Directive {
                words: std::mem::take(&mut words),
                line: first_line,
                block: None,
            }),
            Token::Open => {
                let block = parse_block(tokens);
                out.push(Directive {
                    words: std::mem::take(&mut words),
                    line: first_line,
                    block: Some(block),
                });
            }
            Token::Close => break,
        }
    }
    out
}

/// The walk from the main file through blocks and includes.
struct Walk<'a> {
    files: &'a BTreeMap<&'a str, Vec<Directive>>,
    bodies: &'a BTreeMap<&'a str, &'a str>,
    order: &'a [&'a str],
    prefix: &'a Path,
    /// Each server's listens, with the file holding the server.
    servers: Vec<(Vec<Listen>, PathBuf)>,
    http_includes: Vec<PathBuf>,
    settings: Vec<Setting>,
}

impl Walk<'_> {
    fn block(&mut self, directives: &[Directive], file: &str, context: &[&str], depth: usize) {
        for directive in directives {
            let Some((name, args)) = directive.words.split_first() else {
                continue;
            };
            match (&directive.block, name.as_str()) {
                (None, "include") if depth < MAX_INCLUDE_DEPTH => {
                    let Some(pattern) = args.first() else {
                        continue;
                    };
                    let pattern = self.prefix.join(pattern);
                    let pattern_text = pattern.to_string_lossy().into_owned();
                    if context == ["http"] && pattern_text.contains(['*', '?', '[']) {
                        self.http_includes.push(pattern.clone());
                    }
                    for included in self.order {
                        if glob_match(&pattern_text, included)
                            && let Some(inner) = self.files.get(included)
                        {
                            self.block(inner, included, context, depth + 1);
                        }
                    }
                }
                (Some(inner), "server") if context == ["http"] => {
                    let listens = server_listens(inner);
                    self.servers.push((listens, PathBuf::from(file)));
                    // Includes inside the server may hold more listens.
                    let mut nested = context.to_vec();
                    nested.push("server");
                    self.block(inner, file, &nested, depth);
                }
                (None, "listen") if context == ["http", "server"] => {
                    if let (Some(listen), Some(last)) =
                        (parse_listen(args), self.servers.last_mut())
                    {
                        // Only listens that came through an include land here.
                        if !last.0.contains(&listen) {
                            last.0.push(listen);
                        }
                    }
                }
                (Some(inner), block) => {
                    let mut nested = context.to_vec();
                    nested.push(block);
                    self.block(inner, file, &nested, depth);
                }
                (None, _) if name != "include" => {
                    let context = match context {
                        [] => Context::Main,
                        ["events"] => Context::Events,
                        ["http"] => Context::Http,
                        _ => continue,
                    };
                    let edit = self
                        .bodies
                        .get(file)
                        .and_then(|body| line_edit(body, name, directive.line));
                    self.settings.push(Setting {
                        name: name.clone(),
                        args: args.to_vec(),
                        context,
                        file: PathBuf::from(file),
                        line: directive.line,
                        edit,
                    });
                }
                (None, _) => {}
            }
        }
    }
}

/// The plain-HTTP TCP listens written directly in a server block; `*:80` when it has none (the
/// walk adds those that come through an include).
fn server_listens(directives: &[Directive]) -> Vec<Listen> {
    let written: Vec<&Directive> = directives
        .iter()
        .filter(|d| d.block.is_none() && d.words.first().is_some_and(|w| w == "listen"))
        .collect();
    let has_include = directives
        .iter()
        .any(|d| d.words.first().is_some_and(|w| w == "include"));
    if written.is_empty() && !has_include {
        return vec![Listen {
            address: None,
            port: 80,
            default_server: false,
        }];
    }
    written
        .iter()
        .filter_map(|d| parse_listen(&d.words[1..]))
        .collect()
}

/// A `listen` directive's arguments, or `None` for a unix socket, TLS or QUIC listen (the probe
/// checks plain HTTP).
fn parse_listen(args: &[String]) -> Option<Listen> {
    let (address, params) = args.split_first()?;
    if address.starts_with("unix:")
        || params
            .iter()
            .any(|p| matches!(p.as_str(), "ssl" | "quic" | "proxy_protocol"))
    {
        return None;
    }
    let default_server = params
        .iter()
        .any(|p| p == "default_server" || p == "default");
    let (host, port) = if let Some(rest) = address.strip_prefix('[') {
        // [v6]:port or [v6]
        let (v6, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None => 80,
        };
        (Some(format!("[{v6}]")), port)
    } else if let Some((host, port)) = address.rsplit_once(':') {
        (Some(host.to_owned()), port.parse().ok()?)
    } else if let Ok(port) = address.parse::<u16>() {
        (None, port)
    } else {
        (Some(address.clone()), 80)
    };
    let address = host.filter(|h| !matches!(h.as_str(), "*" | "0.0.0.0"));
    Some(Listen {
        address,
        port,
        default_server,
    })
}

/// The listen to measure: see [`parse_dump`].
fn choose(servers: &[(Vec<Listen>, PathBuf)]) -> Option<Site> {
    let all = || {
        servers
            .iter()
            .flat_map(|(listens, file)| listens.iter().map(move |l| (l, file)))
    };
    let v4 = |l: &Listen| !l.address.as_deref().is_some_and(|a| a.starts_with('['));
    all()
        .find(|(l, _)| l.default_server && v4(l))
        .or_else(|| all().find(|(l, _)| v4(l)))
        .or_else(|| all().next())
        .map(|(listen, file)| Site {
            listen: listen.clone(),
            file: file.clone(),
        })
}

/// Shell-style wildcard match of a whole path: `*` and `?` (not across `/`), `[...]` classes.
fn glob_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len())
                .take_while(|&i| i == 0 || t[i - 1] != '/')
                .any(|i| go(rest, &t[i..])),
            Some(('?', rest)) => t.first().is_some_and(|&c| c != '/') && go(rest, &t[1..]),
            Some(('[', rest)) if rest.contains(&']') => {
                let end = rest.iter().position(|&c| c == ']').unwrap_or(0);
                let (class, after) = (&rest[..end], &rest[end + 1..]);
                let (negate, class) = match class.split_first() {
                    Some(('!' | '^', c)) => (true, c),
                    _ => (false, class),
                };
                t.first()
                    .is_some_and(|c| class_has(class, *c) != negate && go(after, &t[1..]))
            }
            Some((c, rest)) => t.first() == Some(c) && go(rest, &t[1..]),
        }
    }
    fn class_has(class: &[char], c: char) -> bool {
        let mut i = 0;
        while i < class.len() {
            if i + 2 < class.len() && class[i + 1] == '-' {
                if (class[i]..=class[i + 2]).contains(&c) {
                    return true;
                }
                i += 3;
            } else {
                if class[i] == c {
                    return true;
                }
                i += 1;
            }
        }
        false
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `nginx -T` of Debian bookworm's stock nginx package (captured on a test machine).
    const DEBIAN: &str = include_str!("testdata/debian-default.txt");

    #[test]
    fn reads_debians_stock_config() {
        let dump = parse_dump(DEBIAN).unwrap();
        assert_eq!(dump.main_config, Path::new("/etc/nginx/nginx.conf"));
        assert_eq!(
            dump.site.file,
            Path::new("/etc/nginx/sites-enabled/default")
        );
        assert_eq!(
            dump.site.listen,
            Listen {
                address: None,
                port: 80,
                default_server: true
            }
        );
        assert_eq!(dump.site.listen.url(), "http://127.0.0.1/");
        // The commented-out mail listens (localhost:110) are not read.
        assert_eq!(
            dump.http_includes,
            [
                PathBuf::from("/etc/nginx/conf.d/*.conf"),
                PathBuf::from("/etc/nginx/sites-enabled/*")
            ]
        );
        let (file, pattern) = dump.drop_in("smart-file-cache.conf").unwrap();
        assert_eq!(file, Path::new("/etc/nginx/conf.d/smart-file-cache.conf"));
        assert_eq!(pattern, Path::new("/etc/nginx/conf.d/*.conf"));
    }

    #[test]
    fn reads_the_server_wide_directives_and_how_to_edit_them() {
        let dump = parse_dump(DEBIAN).unwrap();
        let nginx_conf = Path::new("/etc/nginx/nginx.conf");
        let workers = dump.setting(Context::Main, "worker_processes").unwrap();
        assert_eq!(workers.args, ["auto"]);
        assert_eq!(workers.file, nginx_conf);
        let edit = workers.edit.as_ref().unwrap();
        assert_eq!(edit.indent, "");
        let regex = regex::Regex::new(&edit.pattern).unwrap();
        assert!(regex.is_match("worker_processes auto;"));
        assert!(!regex.is_match("# worker_processes auto;"));
        let connections = dump.setting(Context::Events, "worker_connections").unwrap();
        assert_eq!(connections.args, ["768"]);
        assert_eq!(connections.edit.as_ref().unwrap().indent, "\t");
        for (name, args) in [
            ("sendfile", "on"),
            ("tcp_nopush", "on"),
            ("gzip", "on"),
            ("access_log", "/var/log/nginx/access.log"),
        ] {
            let setting = dump.setting(Context::Http, name).unwrap();
            assert_eq!(setting.args, [args], "{name}");
            assert!(setting.edit.is_some(), "{name}");
        }
        // Commented out in Debian's file: not set, so nginx's defaults hold.
        for name in ["gzip_comp_level", "keepalive_timeout", "open_file_cache"] {
            assert!(dump.setting(Context::Http, name).is_none(), "{name}");
        }
        // Directives of a server {} are the site's, not the server's.
        assert!(
            !dump
                .settings
                .iter()
                .any(|s| s.name == "root" || s.name == "listen")
        );
    }

    #[test]
    fn a_directive_shares_its_line_or_repeats_and_cannot_be_edited() {
        let dump = parse_dump(
            "# configuration file /n.conf:\nhttp {\n  sendfile on; tcp_nopush on;\n  gzip off; # no\n  server { listen 81; gzip on; }\n  keepalive_timeout 10;\n  include /k.conf;\n}\n# configuration file /k.conf:\nkeepalive_timeout 20;\n",
        )
        .unwrap();
        assert!(
            dump.setting(Context::Http, "sendfile")
                .unwrap()
                .edit
                .is_none()
        );
        // The server's `gzip on;` shares a line: the http-level `gzip off;` is still editable,
        // since no other line matches the whole-line pattern.
        let gzip = dump.setting(Context::Http, "gzip").unwrap();
        assert_eq!(gzip.args, ["off"]);
        assert_eq!(gzip.line, 3);
        assert!(gzip.edit.is_some());
        // Written twice (once through an include): neither is "the" setting.
        assert!(dump.setting(Context::Http, "keepalive_timeout").is_none());
        let in_include = dump
            .settings
            .iter()
            .find(|s| s.file == Path::new("/k.conf"))
            .unwrap();
        assert_eq!((in_include.line, in_include.context), (1, Context::Http));
    }

    #[test]
    fn finds_a_site_on_another_port_through_relative_includes() {
        let dump = "\
# configuration file /opt/web/nginx.conf:
events { }
http {
    include mime.types;   # relative: against /opt/web
    include sites/*.site;
    server { listen unix:/run/x.sock; }
}

# configuration file /opt/web/mime.types:
types { text/html html; }

# configuration file /opt/web/sites/a.site:
server {
    listen [::]:8443 ssl;
    listen 127.0.0.2:8081;
    listen '[::1]:8082' default_server;
    server_name \"a b\";
}
";
        let dump = parse_dump(dump).unwrap();
        assert_eq!(dump.site.file, Path::new("/opt/web/sites/a.site"));
        // The IPv4 listen wins over the IPv6 default_server; TLS and unix sockets are skipped.
        assert_eq!(dump.site.listen.url(), "http://127.0.0.2:8081/");
        assert_eq!(dump.http_includes, [PathBuf::from("/opt/web/sites/*.site")]);
        // `*.site` does not load a `.conf` file: no place for one.
        assert!(dump.drop_in("smart-file-cache.conf").is_none());
        assert!(dump.drop_in("smart.site").is_some());
    }

    #[test]
    fn a_server_without_listen_is_on_port_80_and_other_dumps_are_refused() {
        let dump = "# configuration file /etc/nginx/nginx.conf:\nhttp { server { root /srv; } }\n";
        assert_eq!(
            parse_dump(dump).unwrap().site.listen.url(),
            "http://127.0.0.1/"
        );
        assert_eq!(parse_dump("nginx version: 1.22"), Err(ParseError::NotADump));
        let tls_only = "# configuration file /n.conf:\nhttp { server { listen 443 ssl; } }\n";
        assert_eq!(parse_dump(tls_only), Err(ParseError::NoHttpServer));
        let stream = "# configuration file /n.conf:\nstream { server { listen 81; } }\n";
        assert_eq!(parse_dump(stream), Err(ParseError::NoHttpServer));
    }

    #[test]
    fn include_loops_end() {
        let dump =
            "# configuration file /n.conf:\nhttp { include /n.conf; server { listen 81; } }\n";
        assert_eq!(parse_dump(dump).unwrap().site.listen.port, 81);
    }

    #[test]
    fn wildcards_match_like_nginx() {
        assert!(glob_match(
            "/etc/nginx/conf.d/*.conf",
            "/etc/nginx/conf.d/a.conf"
        ));
        assert!(!glob_match(
            "/etc/nginx/conf.d/*.conf",
            "/etc/nginx/conf.d/a.confx"
        ));
        assert!(!glob_match("/etc/*/a", "/etc/x/y/a"));
        assert!(glob_match("/s/[a-c]?.conf", "/s/b1.conf"));
        assert!(!glob_match("/s/[!a-c]?.conf", "/s/b1.conf"));
    }
}
