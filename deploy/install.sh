#!/usr/bin/env bash
# install.sh: install (or, with --uninstall, remove) smart on a Debian or Ubuntu server from a
# checkout, the same way the Debian package does: the files are the package's own list
# ([package.metadata.deb] assets in smart-cli/Cargo.toml), and the setup is the package's own
# maintainer scripts (deploy/debian/postinst, prerm, postrm). On top of the package it enables the
# dashboard site (disabling nginx's stock default site, which also claims port 80's default
# server) and, on request, basic auth and HTTPS. Idempotent: a second run changes nothing.
# The package (scripts/build-deb, then `apt install ./smart_*.deb`) is the tested path; use one or
# the other on a server, not both.
#
# Usage: deploy/install.sh [--binary PATH] [--root DIR] [--basic-auth USER] [--tls-domain DOMAIN]
#        deploy/install.sh --uninstall [--root DIR]
#
#   --binary PATH        install this smart binary (default: build it with cargo, or use
#                        target/release/smart when it is newer than the sources)
#   --root DIR           install the package's files into the staging root DIR instead of /: the
#                        maintainer scripts (user, state dirs, enabling the timer), ownership,
#                        systemctl and nginx are not run, and what would have run is printed as
#                        `skipped (--root): ...`
#   --basic-auth USER    protect the dashboard with HTTP basic auth; the password is read from
#                        $SMART_DASHBOARD_PASSWORD, else from standard input
#   --tls-domain DOMAIN  add the HTTPS server block for DOMAIN (run certbot certonly first; see
#                        docs/deployment.md)
#   --uninstall          remove everything this script installs, state and audit log included
#                        (like `apt purge smart`: the backups of a run still open are kept)
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
  sed -n '2,28p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
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

ETC=/etc/smart
SITE=/etc/nginx/sites-available/smart-dashboard.conf
SITE_LINK=/etc/nginx/sites-enabled/smart-dashboard.conf
TLS_SITE=/etc/nginx/sites-available/smart-dashboard-tls.conf
TLS_LINK=/etc/nginx/sites-enabled/smart-dashboard-tls.conf
DEFAULT_LINK=/etc/nginx/sites-enabled/default
DEFAULT_MARK=/etc/smart/default-site-disabled
MANIFEST="$repo/smart-cli/Cargo.toml"

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

# The package's assets, one `SOURCE DEST MODE` line each: SOURCE an absolute path in this checkout
# (or `target/release/smart` for the binary), DEST the absolute installed path.
assets() {
  local in_deb=0 in_assets=0 line src dst mode count=0
  while IFS= read -r line; do
    case "$line" in
      '[package.metadata.deb]') in_deb=1; continue ;;
      '['*) in_deb=0 ;;
    esac
    [ "$in_deb" -eq 1 ] || continue
    if [ "$line" = 'assets = [' ]; then
      in_assets=1
      continue
    fi
    [ "$in_assets" -eq 1 ] || continue
    [ "$line" != ']' ] || break
    if ! [[ "$line" =~ ^\ +\[\"([^\"]+)\",\ \"([^\"]+)\",\ \"([0-7]{3,4})\"\],?$ ]]; then
      die "$MANIFEST: cannot read the asset line '$line': keep one [\"source\", \"dest\", \"mode\"] per line"
    fi
    src="${BASH_REMATCH[1]}" dst="/${BASH_REMATCH[2]}" mode="${BASH_REMATCH[3]}"
    case "$src" in
      target/release/*) ;;
      *) src="$(realpath -m "$repo/smart-cli/$src")" ;;
    esac
    case "$dst" in
      */) dst="$dst$(basename "$src")" ;;
    esac
    echo "$src $dst $mode"
    count=$((count + 1))
  done <"$MANIFEST"
  [ "$count" -gt 0 ] || die "$MANIFEST: no [package.metadata.deb] assets found"
}

# maintainer SCRIPT ARG: runs the package's maintainer script on a real install.
maintainer() {
  host "$here/debian/$1" "$2"
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
  local bin list src dst mode
  bin="$(smart_binary)"
  list="$(assets)"
  while read -r src dst mode; do
    case "$src" in
      target/release/smart) src="$bin" ;;
    esac
    case "$dst" in
      # The agent config and the experiments are an admin's to edit (dpkg conffiles).
      "$ETC"/*) put_once "$src" "$dst" "$mode" ;;
      *) put "$src" "$dst" "$mode" ;;
    esac
  done <<<"$list"

  if [ -z "$root" ] && [ ! -x /usr/lib/polkit-1/polkitd ]; then
    say "warning: polkitd is not installed (apt-get install polkitd): without it the agent cannot run nginx -t, reload nginx or set sysctls"
  fi
  # The smart user, its dirs, the enabled units and the started timer; never an experiment.
  maintainer postinst configure

  # The dashboard site, which the package ships but leaves disabled. Both it and the stock site
  # claim default_server on port 80: the stock one steps aside (and comes back on --uninstall).
  link "$SITE" "$SITE_LINK"
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
  host nginx -t -q
  host systemctl reload-or-restart nginx.service
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
  local list src dst mode restore_default=0
  list="$(assets)"
  # Stops the timer and the agent (a running experiment is reverted first) and recovers any run
  # left open; fails, changing nothing, when an original cannot be put back.
  maintainer prerm remove
  if [ -e "$root$DEFAULT_MARK" ]; then
    restore_default=1
  fi
  while read -r src dst mode; do
    remove "$dst"
  done <<<"$list"
  remove "$SITE_LINK" "$TLS_LINK" "$TLS_SITE" "$ETC/htpasswd" "$ETC/nginx-auth.conf" "$DEFAULT_MARK"
  # The state, the dashboard, the smart user and the site links, as `apt purge smart` removes
  # them (the backups of a run still open are kept).
  maintainer postrm purge
  if [ "$restore_default" -eq 1 ] && [ -e "$root/etc/nginx/sites-available/default" ]; then
    ln -sfn /etc/nginx/sites-available/default "$root$DEFAULT_LINK"
    say "re-enabled the stock default site"
  fi
  local dirs=()
  while read -r src dst mode; do
    dirs+=("$(dirname "$dst")")
  done <<<"$list"
  prune "${dirs[@]}" /etc/nginx/sites-enabled
  if [ -z "$root" ]; then
    systemctl daemon-reload
    if nginx -t -q; then
      systemctl reload-or-restart nginx.service
    fi
  fi
  say "uninstalled"
}

if [ "$uninstall" -eq 1 ]; then
  uninstall_all
else
  install_all
fi
