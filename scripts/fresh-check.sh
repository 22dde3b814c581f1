#!/usr/bin/env bash
# Proves the README's quick start on a fresh Debian 12 machine: builds a
# minbase Debian 12 root with debootstrap (cached), makes it look like a real
# machine (its root a mount point, proc/sys/dev/run, Debian's default
# /etc/hosts and hostname), clones this checkout's committed HEAD into it and
# runs there, as root, the README's commands.
#
#   scripts/fresh-check.sh [demo|quick|full]     (default: full)
#     demo   ./run.sh demo
#     quick  ./run.sh demo, then ./run.sh test -LE e2e (all but end-to-end)
#     full   ./run.sh demo, then ./run.sh test
#
# Run as root on a Debian 12 host (CI does, from .ci/run). Environment:
#   WARREN_FRESH_CACHE  cache directory (default /var/cache/warren-fresh): the
#                       debootstrapped root as a tarball and the .debs apt
#                       fetched, so reruns skip debootstrap and downloads
#   WARREN_FRESH_WORK   where each run's root is unpacked (default /var/tmp)
#   WARREN_FRESH_KEEP=1 keep the run's root afterwards (for a look inside)
#
# Everything happens in new mount, UTS, IPC and PID namespaces: the root's
# mounts are never visible to the host and vanish with the namespace, its
# hostname is its own, and every process started inside dies with it. The
# network is the host's (apt needs it); nothing touches its configuration:
# the tests only use loopback and namespaces they create, named in the
# root's own /run/netns. Several checks may run at once (each has its own
# root; the cache is locked while it changes).
set -euo pipefail

CACHE=${WARREN_FRESH_CACHE:-/var/cache/warren-fresh}
WORK=${WARREN_FRESH_WORK:-/var/tmp}
HOSTNAME_FRESH=debian # what Debian's installer proposes
SUITE=bookworm

log() { echo "fresh-check: $*" >&2; }
die() {
	log "$*"
	exit 1
}

# ---- inside the namespaces (the script re-runs itself through unshare) ----

# Undo every mount under the root. The namespace's end would do it too; this
# makes a failed run leave nothing behind even while processes linger.
inside_cleanup() {
	local root=$1 m
	# Deepest first.
	awk -v r="$root" '$5 == r || index($5, r "/") == 1 { print $5 }' \
		/proc/self/mountinfo | sort -r | while read -r m; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done
}

inside() { # root scope
	local root=$1 scope=$2 rc=0
	# Global: the trap runs after this function's locals are gone.
	INSIDE_ROOT=$root
	trap 'inside_cleanup "$INSIDE_ROOT"' EXIT
	# Nothing mounted here propagates to the host.
	mount --make-rprivate /
	# Its root a mount point: `ip netns exec` remounts / as a slave.
	mount --bind "$root" "$root"
	mount -t proc proc "$root/proc"
	mount -t sysfs sysfs "$root/sys"
	mount --rbind /dev "$root/dev"
	mount -t tmpfs -o mode=755,nosuid,nodev tmpfs "$root/run"
	hostname "$HOSTNAME_FRESH"

	local steps=("./run.sh demo")
	case "$scope" in
	demo) ;;
	quick) steps+=("./run.sh test -LE e2e") ;;
	full) steps+=("./run.sh test") ;;
	esac
	local step t0
	for step in "${steps[@]}"; do
		log "in the fresh root, as root: $step"
		t0=$SECONDS
		# A login's environment, nothing of the caller's but CI.
		chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
			PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
			${CI:+CI=$CI} /bin/bash -c "cd /root/warren && $step" \
			</dev/null || rc=$?
		log "$step: exit $rc after $((SECONDS - t0)) s"
		[ "$rc" -eq 0 ] || break
	done
	return "$rc"
}

if [ "${1:-}" = --inside ]; then
	shift
	inside "$@"
	exit $?
fi

# ---- on the host ----

# All in a function, so bash has read the whole file before it runs any of
# it: editing the script during a run cannot change that run.
main() {
	scope=${1:-full}
	case "$scope" in
	demo | quick | full) ;;
	*)
		echo "usage: $0 [demo|quick|full]" >&2
		exit 2
		;;
	esac
	[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, mounts)"
	src=$(cd "$(dirname "$0")/.." && pwd)
	head=$(git -C "$src" rev-parse HEAD)
	if [ -n "$(git -C "$src" status --porcelain --untracked-files=no)" ]; then
		log "note: uncommitted changes are not checked (HEAD $head is)"
	fi
	"$src/scripts/deps.sh" fresh

	# The host's Debian archives, as its apt is configured: the first URI of a
	# deb entry ending in /debian (and /debian-security, if there is one).
	host_uris() {
		local f
		for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
			/etc/apt/sources.list.d/*.sources; do
			[ -f "$f" ] || continue
			sed -nE -e 's/^deb( \[[^]]*\])? +([a-z+]+:\/\/[^ ]+).*/\2/p' \
				-e 's/^URIs: *//p' "$f" | tr ' ' '\n'
		done
	}
	mirror=$(host_uris | grep -E '/debian/?$' | head -n1) ||
		true
	security=$(host_uris | grep -E '/debian-security/?$' | head -n1) || true
	[ -n "$mirror" ] || die "no Debian archive (URI ending in /debian) in /etc/apt"

	mkdir -p "$CACHE/debs"
	tarball=$CACHE/$SUITE-minbase.tar
	exec 9>"$CACHE/lock"

	# The cached root: debootstrap minbase plus git (what a user has who just
	# cloned the project), exactly as debootstrap leaves it.
	t_start=$SECONDS
	flock 9
	if [ ! -s "$tarball" ]; then
		log "no cached root: debootstrap --variant=minbase $SUITE from $mirror"
		b=$(mktemp -d "$CACHE/build.XXXXXX")
		debootstrap --variant=minbase --include=git --cache-dir="$CACHE/debs" \
			"$SUITE" "$b/root" "$mirror" >"$b/debootstrap.log" 2>&1 || {
			tail -n 30 "$b/debootstrap.log" >&2
			rm -rf --one-file-system "$b"
			die "debootstrap failed"
		}
		tar -C "$b/root" --numeric-owner -cf "$b/root.tar" .
		mv "$b/root.tar" "$tarball"
		rm -rf --one-file-system "$b"
		log "cached root in $tarball ($((SECONDS - t_start)) s)"
	fi
	flock -u 9
	t_root=$SECONDS

	run=$(mktemp -d "$WORK/warren-fresh.XXXXXX")
	root=$run/root
	host_cleanup() {
		local rc=$?
		[ "$rc" -eq 0 ] || log "exit $rc"
		# The namespace is gone by now, and its mounts with it; never delete
		# through a mount that is somehow still there.
		if awk -v r="$root" '$5 == r || index($5, r "/") == 1 { f = 1 }
			END { exit !f }' /proc/self/mountinfo; then
			log "mounts left under $root; not deleting it"
		elif [ "${WARREN_FRESH_KEEP:-0}" = 1 ]; then
			log "kept $root"
		else
			rm -rf --one-file-system "$run"
		fi
		exit "$rc"
	}
	trap host_cleanup EXIT
	mkdir "$root"
	tar -C "$root" --numeric-owner -xf "$tarball"

	# Make it a machine a user would have after installing Debian 12: the
	# archives the host uses (main, updates, security), Debian's default hosts
	# file (localhost on both 127.0.0.1 and ::1) and a hostname.
	rm -f "$root/etc/apt/sources.list"
	{
		printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\n' \
			"$mirror" "$SUITE" "$SUITE"
		printf 'Components: main\n'
		printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
		if [ -n "$security" ]; then
			printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\n' \
				"$security" "$SUITE"
			printf 'Components: main\n'
			printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
		fi
	} >"$root/etc/apt/sources.list.d/debian.sources"
	echo "$HOSTNAME_FRESH" >"$root/etc/hostname"
	cat >"$root/etc/hosts" <<EOF
127.0.0.1	localhost
127.0.1.1	$HOSTNAME_FRESH

# The following lines are desirable for IPv6 capable hosts
::1     localhost ip6-localhost ip6-loopback
ff02::1 ip6-allnodes
ff02::2 ip6-allrouters
EOF
	cp /etc/resolv.conf "$root/etc/resolv.conf"
	# The packages apt fetched last time (hard links: same files, no copy); apt
	# still installs every one of them itself.
	cp -aln "$CACHE/debs/." "$root/var/cache/apt/archives/" 2>/dev/null ||
		cp -an "$CACHE/debs/." "$root/var/cache/apt/archives/"

	git clone -q --no-checkout "$src" "$root/root/warren"
	git -C "$root/root/warren" checkout -q --detach "$head"
	log "root ready in $((SECONDS - t_root)) s: HEAD $head, scope $scope"

	t_run=$SECONDS
	rc=0
	unshare --mount --uts --ipc --pid --fork --kill-child \
		"$0" --inside "$root" "$scope" || rc=$?
	log "README commands: exit $rc after $((SECONDS - t_run)) s"

	# Keep what apt fetched for the next run, and a failed run's test logs.
	flock 9
	cp -aln "$root/var/cache/apt/archives/"*.deb "$CACHE/debs/" 2>/dev/null || true
	flock -u 9
	if [ "$rc" -ne 0 ]; then
		out=$src/build/fresh-check
		rm -rf "$out"
		mkdir -p "$out"
		for d in "$root"/root/warren/build/*/test-logs; do
			[ -d "$d" ] || continue
			f=$(basename "$(dirname "$d")")
			cp -a "$d" "$out/$f"
		done
		log "failed; test logs of the fresh root (if any) in $out"
	fi
	log "total $((SECONDS - t_start)) s (root $((t_root - t_start)) s)"
	exit "$rc"
}

main "$@"
