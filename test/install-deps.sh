#!/usr/bin/env bash
# Installs the system tools the integration tests use, when missing:
# openssl (an independent TLS client), nginx (a reverse proxy), an MIT
# Kerberos KDC and its tools (krb5-kdc, krb5-admin-server, krb5-user), the JDK's keytool (keystores as Flink
# users make them), curl, the shell tools of the word-count reference, Debian's PostgreSQL 15
# server and psql (the postgres sink's tests start it with initdb from /usr/lib/postgresql/15/bin),
# and Debian's Chromium with NSS's certutil/pk12util for the dashboard's browser tests (a client
# certificate goes into the browser's NSS database).
set -euo pipefail
declare -A pkg_of=(
	[tr]=coreutils [sort]=coreutils [uniq]=coreutils [awk]=gawk
	[curl]=curl [openssl]=openssl [keytool]=openjdk-17-jre-headless [nginx]=nginx
	[krb5kdc]=krb5-kdc [kadmin.local]=krb5-admin-server [kinit]=krb5-user
	[chromium]=chromium [pk12util]=libnss3-tools [certutil]=libnss3-tools
)
pkgs=()
for tool in "${!pkg_of[@]}"; do
	command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || pkgs+=("${pkg_of[$tool]}")
done
for prog in initdb postgres psql; do
	[ -x "/usr/lib/postgresql/15/bin/$prog" ] || { pkgs+=(postgresql-15 postgresql-client-15); break; }
done
if [ ${#pkgs[@]} -eq 0 ]; then
	exit 0
fi
mapfile -t pkgs < <(printf '%s\n' "${pkgs[@]}" | sort -u)
echo "installing test dependencies: ${pkgs[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}"
