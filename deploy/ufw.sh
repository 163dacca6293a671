#!/usr/bin/env bash
# ufw.sh: a firewall that lets in SSH, HTTP and HTTPS only. Idempotent: ufw skips rules it
# already has, and the defaults are set to the same values every run.
#
# Usage: deploy/ufw.sh [--dry-run] [--ssh-port PORT]
#
#   --dry-run        print each ufw command (one argv per line, words separated by spaces)
#                    instead of running it; needs neither root nor ufw
#   --ssh-port PORT  the port sshd listens on (default 22), so enabling the firewall never locks
#                    you out of a server whose sshd moved
set -euo pipefail

dry_run=0
ssh_port=22
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry_run=1; shift ;;
    --ssh-port)
      [ $# -ge 2 ] || { echo "ufw.sh: --ssh-port needs a port" >&2; exit 2; }
      ssh_port="$2"; shift 2 ;;
    -h | --help) sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "ufw.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
if ! [[ "$ssh_port" =~ ^[0-9]{1,5}$ ]] || [ "$ssh_port" -lt 1 ] || [ "$ssh_port" -gt 65535 ]; then
  echo "ufw.sh: --ssh-port $ssh_port: not a port number (1-65535)" >&2
  exit 2
fi

ufw_run() {
  if [ "$dry_run" -eq 1 ]; then
    echo "ufw $*"
  else
    ufw "$@"
  fi
}

if [ "$dry_run" -eq 0 ]; then
  command -v ufw >/dev/null 2>&1 || { echo "ufw.sh: ufw is not installed (apt-get install ufw)" >&2; exit 3; }
  [ "$(id -u)" -eq 0 ] || { echo "ufw.sh: run as root (or try --dry-run)" >&2; exit 2; }
fi

ufw_run default deny incoming
ufw_run default allow outgoing
ufw_run limit "$ssh_port/tcp" comment ssh
ufw_run allow 80/tcp comment http
ufw_run allow 443/tcp comment https
ufw_run --force enable
