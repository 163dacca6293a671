#!/usr/bin/env bash
# install.sh: install (or, with --uninstall, remove) the smart agent on a Debian or Ubuntu server:
# the binary, the `smart` user, its directories, the systemd units and timer, the polkit rule, the
# nginx dashboard site and the example experiments. Idempotent: a second run changes nothing.
#
# Usage: deploy/install.sh [--binary PATH] [--root DIR] [--basic-auth USER] [--tls-domain DOMAIN]
#        deploy/install.sh --uninstall [--root DIR]
#
#   --binary PATH        install this smart binary (default: build it with cargo, or use
#                        target/release/smart when it is newer than the sources)
#   --root DIR           install into the staging root DIR instead of /: users, ownership,
#                        systemctl (but `systemctl --root DIR enable`) and nginx are not touched,
#                        and what would have run is printed as `skipped (--root): ...`
#   --basic-auth USER    protect the dashboard with HTTP basic auth; the password is read from
#                        $SMART_DASHBOARD_PASSWORD, else from standard input
#   --tls-domain DOMAIN  add the HTTPS server block for DOMAIN (run certbot certonly first; see
#                        docs/deployment.md)
#   --uninstall          remove everything this script installs, state and audit log included
#
# See docs/deployment.md for what goes where and docs/security.md for why.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"

root=""
binary=""
uninstall=0
auth_user=""
tls_domain=""

usage() {
  sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

die() {
  echo "install.sh: $*" >&2
  exit 2
}

while [ $# -gt 0 ]; do
  case "$1" in
    --root) [ $# -ge 2 ] || die "--root needs a directory"; root="$2"; shift 2 ;;
    --binary) [ $# -ge 2 ] || die "--binary needs a path"; binary="$2"; shift 2 ;;
    --basic-auth) [ $# -ge 2 ] || die "--basic-auth needs a user name"; auth_user="$2"; shift 2 ;;
    --tls-domain) [ $# -ge 2 ] || die "--tls-domain needs a domain"; tls_domain="$2"; shift 2 ;;
    --uninstall) uninstall=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

if [ -n "$root" ]; then
  [ -d "$root" ] || die "--root $root: not a directory; create it first"
  root="$(cd "$root" && pwd)"
  [ "$root" != "/" ] || root=""
fi
if [ -n "$auth_user" ] && ! [[ "$auth_user" =~ ^[A-Za-z0-9._-]{1,32}$ ]]; then
  die "--basic-auth $auth_user: use letters, digits, '.', '_' or '-' (at most 32)"
fi
if [ -n "$tls_domain" ] && ! [[ "$tls_domain" =~ ^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$ ]]; then
  die "--tls-domain $tls_domain: not a domain name like dash.example.com"
fi
if [ -z "$root" ] && [ "$(id -u)" -ne 0 ]; then
  die "run as root (or stage with --root DIR)"
fi
if [ -n "$tls_domain" ] && [ -z "$root" ] && [ ! -e "/etc/letsencrypt/live/$tls_domain/fullchain.pem" ]; then
  die "--tls-domain $tls_domain: no certificate yet; run: certbot certonly --webroot -w /var/www/letsencrypt -d $tls_domain (see docs/deployment.md)"
fi

UNITS=(smart-agent.service smart-agent.timer smart-recover.service smart-nginx-test.service smart-somaxconn@.service)
BIN=/usr/local/bin/smart
ETC=/etc/smart
STATE=/var/lib/smart
WWW=/var/www/smart
ACME=/var/www/letsencrypt
SMARTD=/etc/nginx/smart.d
DOCS=/usr/local/share/doc/smart
SITE=/etc/nginx/sites-available/smart-dashboard.conf
SITE_LINK=/etc/nginx/sites-enabled/smart-dashboard.conf
TLS_SITE=/etc/nginx/sites-available/smart-dashboard-tls.conf
TLS_LINK=/etc/nginx/sites-enabled/smart-dashboard-tls.conf
HEADERS=/etc/nginx/snippets/smart-headers.conf
INCLUDE=/etc/nginx/conf.d/smart.conf
POLKIT=/etc/polkit-1/rules.d/50-smart.rules
DEFAULT_LINK=/etc/nginx/sites-enabled/default
DEFAULT_MARK=/etc/smart/default-site-disabled

say() { echo "install.sh: $*"; }

# Runs a command on a real install; with --root only says what it would have run.
host() {
  if [ -n "$root" ]; then
    say "skipped (--root): $*"
  else
    "$@"
  fi
}

# Ownership only means something on the real host (the smart user exists there).
own() {
  local owner="$1" path="$2"
  if [ -n "$root" ]; then
    return 0
  fi
  if [ "$(stat -c %U:%G "$path")" != "$owner" ]; then
    chown "$owner" "$path"
  fi
}

# put SRC DST MODE [OWNER]: installs a file, writing only when its bytes or mode differ.
put() {
  local src="$1" dst="$root$2" mode="$3" owner="${4:-root:root}"
  mkdir -p "$(dirname "$dst")"
  if ! cmp -s "$src" "$dst"; then
    cp "$src" "$dst.new"
    chmod "$mode" "$dst.new"
    mv -f "$dst.new" "$dst"
    say "installed $2"
  fi
  if [ "$(stat -c %a "$dst")" != "$mode" ]; then
    chmod "$mode" "$dst"
  fi
  own "$owner" "$dst"
}

# put_once SRC DST MODE: like put, but never replaces a file an admin may have edited.
put_once() {
  if [ -e "$root$2" ]; then
    return 0
  fi
  put "$@"
}

# dir PATH MODE [OWNER]
dir() {
  local path="$root$1" mode="$2" owner="${3:-root:root}"
  if [ ! -d "$path" ]; then
    mkdir -p "$path"
    say "created $1"
  fi
  if [ "$(stat -c %a "$path")" != "$mode" ]; then
    chmod "$mode" "$path"
  fi
  own "$owner" "$path"
}

# link TARGET LINK
link() {
  local target="$1" path="$root$2"
  if [ "$(readlink "$path" 2>/dev/null || true)" != "$target" ]; then
    mkdir -p "$(dirname "$path")"
    ln -sfn "$target" "$path"
    say "linked $2 -> $target"
  fi
}

remove() {
  local path
  for path in "$@"; do
    if [ -e "$root$path" ] || [ -L "$root$path" ]; then
      rm -rf -- "$root$path"
      say "removed $path"
    fi
  done
}

# prune DIR...: in a staging root, removes each DIR and then its parents while they are empty, so
# --uninstall leaves the root as it found it (on a real host the system's directories stay).
prune() {
  local path
  [ -n "$root" ] || return 0
  for path in "$@"; do
    while [ "$path" != "/" ]; do
      if [ -d "$root$path" ]; then
        [ -z "$(ls -A "$root$path")" ] || break
        rmdir "$root$path"
      fi
      path="$(dirname "$path")"
    done
  done
}

systemctl_enable() {
  if [ -n "$root" ]; then
    if command -v systemctl >/dev/null 2>&1; then
      systemctl --root="$root" --quiet enable "$@"
    else
      say "skipped (--root, no systemctl): systemctl enable $*"
    fi
  else
    systemctl daemon-reload
    systemctl enable "$@"
  fi
}

smart_binary() {
  if [ -n "$binary" ]; then
    [ -x "$binary" ] || die "--binary $binary: not an executable file"
    echo "$binary"
    return
  fi
  local built="$repo/target/release/smart"
  if [ ! -x "$built" ] || [ -n "$(find "$repo" -name '*.rs' -newer "$built" -not -path '*/target/*' -print -quit)" ]; then
    command -v cargo >/dev/null 2>&1 || die "no --binary given and cargo is not installed: install Rust (https://rustup.rs) or pass --binary PATH"
    say "building smart (cargo build --release)" >&2
    (cd "$repo" && cargo build --release --locked -p smart-cli >&2)
  fi
  echo "$built"
}

install_all() {
  local bin
  bin="$(smart_binary)"

  if [ -z "$root" ] && ! id -u smart >/dev/null 2>&1; then
    useradd --system --user-group --home-dir "$STATE" --no-create-home \
      --shell /usr/sbin/nologin --comment "smart self-tuning agent" smart
    say "created user smart"
  elif [ -n "$root" ]; then
    say "skipped (--root): useradd --system --user-group smart"
  fi

  put "$bin" "$BIN" 755

  dir "$ETC" 755
  dir "$ETC/experiments" 755
  put_once "$here/smart.toml" "$ETC/smart.toml" 644
  local exp
  for exp in "$here"/experiments/*.json; do
    put_once "$exp" "$ETC/experiments/$(basename "$exp")" 644
  done
  dir "$STATE" 750 smart:smart
  dir "$WWW" 2750 smart:www-data
  dir "$ACME" 755
  dir "$SMARTD" 755 smart:smart

  local unit
  for unit in "${UNITS[@]}"; do
    put "$here/systemd/$unit" "/etc/systemd/system/$unit" 644
  done
  put "$here/polkit/50-smart.rules" "$POLKIT" 644

  put "$here/nginx/smart-headers.conf" "$HEADERS" 644
  put "$here/nginx/smart-include.conf" "$INCLUDE" 644
  put "$here/nginx/smart-dashboard.conf" "$SITE" 644
  link "$SITE" "$SITE_LINK"
  # Both sites claim default_server on port 80: the stock one steps aside (and comes back on
  # --uninstall).
  if [ "$(readlink "$root$DEFAULT_LINK" 2>/dev/null || true)" = /etc/nginx/sites-available/default ]; then
    rm -f "$root$DEFAULT_LINK"
    : >"$root$DEFAULT_MARK"
    say "disabled the stock default site (restored by --uninstall)"
  fi
  if [ -n "$auth_user" ]; then
    install_auth
  fi
  if [ -n "$tls_domain" ]; then
    local tls
    tls="$(mktemp)"
    sed "s/@DOMAIN@/$tls_domain/g" "$here/nginx/smart-dashboard-tls.conf" >"$tls"
    put "$tls" "$TLS_SITE" 644
    rm -f "$tls"
    link "$TLS_SITE" "$TLS_LINK"
  fi

  for doc in deployment.md security.md troubleshooting.md quickstart.md; do
    put "$repo/docs/$doc" "$DOCS/$doc" 644
  done

  if [ -z "$root" ] && [ ! -x /usr/lib/polkit-1/polkitd ]; then
    say "warning: polkitd is not installed (apt-get install polkitd): without it the agent cannot run nginx -t, reload nginx or set sysctls"
  fi
  systemctl_enable smart-agent.timer smart-recover.service
  # A first dashboard, so the site shows something before the first round.
  host runuser -u smart -- "$BIN" --config "$ETC/smart.toml" dashboard
  host nginx -t -q
  host systemctl reload-or-restart nginx.service
  host systemctl start smart-agent.timer
  say "done: the first round runs within the hour (systemctl list-timers smart-agent.timer)"
}

install_auth() {
  local password="${SMART_DASHBOARD_PASSWORD:-}"
  if [ -z "$password" ]; then
    IFS= read -r password || true
  fi
  [ -n "$password" ] || die "--basic-auth: no password (set SMART_DASHBOARD_PASSWORD or pipe it in)"
  local hash tmp
  hash="$(printf '%s\n' "$password" | openssl passwd -6 -stdin)"
  tmp="$(mktemp)"
  # A new salt every run would rewrite the file each time: keep it while the password matches.
  if [ -f "$root$ETC/htpasswd" ]; then
    local old salt
    old="$(sed -n "s/^$auth_user://p" "$root$ETC/htpasswd")"
    salt="$(echo "$old" | cut -d'$' -f3)"
    if [ -n "$salt" ] && [ "$(printf '%s\n' "$password" | openssl passwd -6 -salt "$salt" -stdin)" = "$old" ]; then
      hash="$old"
    fi
  fi
  printf '%s:%s\n' "$auth_user" "$hash" >"$tmp"
  put "$tmp" "$ETC/htpasswd" 640 root:www-data
  cat >"$tmp" <<EOF
# Written by deploy/install.sh --basic-auth: loopback (smart's own probes) gets in, others log in.
satisfy any;
allow 127.0.0.1;
allow ::1;
deny all;
auth_basic "smart dashboard";
auth_basic_user_file /etc/smart/htpasswd;
EOF
  put "$tmp" "$ETC/nginx-auth.conf" 644
  rm -f "$tmp"
}

uninstall_all() {
  # Tolerant: a half-installed or already removed system has nothing to stop.
  host systemctl disable --now smart-agent.timer smart-recover.service || true
  # Stopping a run makes smart put the original config back before it exits.
  host systemctl stop smart-agent.service || true
  if [ -n "$root" ] && command -v systemctl >/dev/null 2>&1 && [ -e "$root/etc/systemd/system/smart-agent.timer" ]; then
    systemctl --root="$root" --quiet disable smart-agent.timer smart-recover.service
  fi
  local unit
  for unit in "${UNITS[@]}"; do
    remove "/etc/systemd/system/$unit"
  done
  remove "$POLKIT" "$HEADERS" "$INCLUDE" "$SITE_LINK" "$SITE" "$TLS_LINK" "$TLS_SITE" \
    "$SMARTD" "$WWW" "$ACME" "$STATE" "$DOCS" "$BIN"
  if [ -e "$root$DEFAULT_MARK" ] && [ -e "$root/etc/nginx/sites-available/default" ]; then
    ln -sfn /etc/nginx/sites-available/default "$root$DEFAULT_LINK"
    say "re-enabled the stock default site"
  fi
  remove "$ETC"
  prune /etc/systemd/system/timers.target.wants /etc/systemd/system/multi-user.target.wants \
    /etc/polkit-1/rules.d /etc/nginx/snippets /etc/nginx/conf.d /etc/nginx/sites-enabled \
    /etc/nginx/sites-available /usr/local/bin /usr/local/share/doc /var/www /var/lib
  if [ -z "$root" ]; then
    systemctl daemon-reload
    if nginx -t -q; then
      systemctl reload-or-restart nginx.service
    fi
    if id -u smart >/dev/null 2>&1; then
      userdel smart
      say "removed user smart"
    fi
  else
    say "skipped (--root): userdel smart"
  fi
  say "uninstalled"
}

if [ "$uninstall" -eq 1 ]; then
  uninstall_all
else
  install_all
fi
