#!/usr/bin/env bash
# Installs the system tools the integration tests use, when missing.
# The runtime tests need only a shell with tr, sort, uniq and awk; later
# security tests add their packages here (openssl, krb5-kdc, chromium...).
set -euo pipefail
need=()
for tool in tr sort uniq awk curl; do
	command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
if [ ${#need[@]} -eq 0 ]; then
	exit 0
fi
pkgs=()
for t in "${need[@]}"; do
	case "$t" in
	tr | sort | uniq) pkgs+=(coreutils) ;;
	awk) pkgs+=(gawk) ;;
	curl) pkgs+=(curl) ;;
	esac
done
echo "installing: ${pkgs[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${pkgs[@]}"
