#!/usr/bin/env bash
# Install the Debian 12 packages warren needs to build and test.
#   scripts/deps.sh [build|test|all|bench|fresh]     (default: all)
# build: what building, installing and running warren need (./run.sh demo,
# build, install); nothing else. test (= all): build's, plus every program
# the test suite runs, down to what a minbase Debian root lacks
# (scripts/fresh-check.sh proves it). bench: what bench/run.py measures
# warren against (the peers) and plots with; fresh: what
# scripts/fresh-check.sh needs on the host. Neither is part of all, so
# ./run.sh test never installs them.
# As root, missing packages are installed with apt-get. Otherwise the
# apt-get line to run is printed and the script fails.
set -euo pipefail

BUILD_PKGS=(gcc make cmake pkg-config libc6-dev
	libuv1-dev libsodium-dev libinih-dev
	libngtcp2-dev libngtcp2-crypto-gnutls-dev libgnutls28-dev nettle-dev libsnappy-dev zlib1g-dev
	libjansson-dev libmicrohttpd-dev)
# Test programs: cmocka (unit, sim), pytest (e2e), clang (libFuzzer),
# clang-format (style), and what the e2e tests run: ip, ping, iperf3, curl,
# kcptun-client/-server, man (test_install), and for datagrams dnsmasq and
# dig (DNS through UDP forwards) and userspace WireGuard (wireguard-go, wg:
# the kernel may have no WireGuard module). socat and procps are for
# debugging a run by hand.
TEST_PKGS=(libcmocka-dev python3 python3-pytest clang libclang-rt-14-dev
	clang-format iproute2 iputils-ping socat iperf3 procps curl kcptun
	man-db dnsmasq-base bind9-dnsutils wireguard-go wireguard-tools)
BENCH_PKGS=(iperf3 iproute2 socat stunnel4 openssl kcptun shadowsocks-libev
	python3 python3-matplotlib wireguard-go wireguard-tools)
FRESH_PKGS=(debootstrap git)

case "${1:-all}" in
build) want=("${BUILD_PKGS[@]}") ;;
test | all) want=("${BUILD_PKGS[@]}" "${TEST_PKGS[@]}") ;;
bench) want=("${BUILD_PKGS[@]}" "${BENCH_PKGS[@]}") ;;
fresh) want=("${FRESH_PKGS[@]}") ;;
*)
	echo "usage: $0 [build|test|all|bench|fresh]" >&2
	exit 2
	;;
esac

missing=()
for p in "${want[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "warren: missing Debian packages; run as root:" >&2
	echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
	exit 1
fi
echo "warren: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
