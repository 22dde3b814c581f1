#!/usr/bin/env bash
# warren's developer entry point. Each command installs missing Debian
# packages first (as root; otherwise it prints the apt-get line to run).
#
#   ./run.sh demo      build (release) and run the demo: a tunnel on loopback
#   ./run.sh test      build release + ASan/UBSan, run the whole test suite
#   ./run.sh build     build release into build/release
#   ./run.sh install   build and install warren and its man page (PREFIX=/usr/local)
#   ./run.sh fuzz [S]  run each libFuzzer target for S seconds (default 60)
set -euo pipefail
cd "$(dirname "$0")"
JOBS=${JOBS:-$(nproc)}

configure_build() { # dir, extra cmake args...
	local dir=$1
	shift
	cmake -S . -B "$dir" -Wno-dev "$@" >/dev/null
	cmake --build "$dir" -j "$JOBS"
}

# demo, build and install need only scripts/deps.sh build's packages: the
# tests that need test packages are left out when those are missing
# (REQUIRE=OFF). test sets REQUIRE=ON, so a missing test tool stops it.
REQUIRE=OFF
build_release() {
	configure_build build/release -DCMAKE_BUILD_TYPE=Release \
		-DWARREN_REQUIRE_TESTS=$REQUIRE "$@"
}
build_asan() {
	configure_build build/asan -DCMAKE_BUILD_TYPE=Debug -DWARREN_SANITIZE=ON \
		-DWARREN_REQUIRE_TESTS=$REQUIRE
}
build_fuzz() {
	CC=clang configure_build build/fuzz -DCMAKE_BUILD_TYPE=Debug \
		-DWARREN_FUZZ=ON -DWARREN_E2E=OFF -DWARREN_REQUIRE_TESTS=$REQUIRE
}

run_ctest() { # dir, extra ctest args...
	local dir=$1
	shift
	(cd "$dir" && ctest --output-on-failure "$@")
}

cmd=${1:-help}
shift || true
case "$cmd" in
demo)
	scripts/deps.sh build
	build_release
	exec build/release/warren demo "$@"
	;;
build)
	scripts/deps.sh build
	build_release
	;;
test)
	scripts/deps.sh all
	REQUIRE=ON
	build_release
	build_asan
	build_fuzz
	export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
	export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
	echo "== release build: whole suite"
	run_ctest build/release "$@"
	echo "== ASan+UBSan build: whole suite"
	run_ctest build/asan "$@"
	echo "== libFuzzer build: corpus replay"
	run_ctest build/fuzz -L fuzz "$@"
	;;
install)
	scripts/deps.sh build
	build_release -DCMAKE_INSTALL_PREFIX="${PREFIX:-/usr/local}"
	cmake --install build/release
	;;
fuzz)
	scripts/deps.sh all
	REQUIRE=ON
	build_fuzz
	secs=${1:-60}
	for f in build/fuzz/tests/fuzz/fuzz_*; do
		[ -x "$f" ] || continue
		name=$(basename "$f")
		corpus=tests/fuzz/corpus/${name#fuzz_}
		mkdir -p "build/fuzz/new-corpus/${name#fuzz_}"
		"$f" -max_total_time="$secs" "build/fuzz/new-corpus/${name#fuzz_}" "$corpus"
	done
	;;
*)
	sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
	[ "$cmd" = help ] || exit 2
	;;
esac
