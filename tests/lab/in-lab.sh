#!/bin/bash
# Run a command on the lab's KVM: boot L1 (Debian's stock kernel under QEMU
# TCG, -cpu max: emulated AMD SVM + nested paging, kvm_amd loaded), share
# this host's whole root file system with it over 9p, chroot into that and
# run the command there, in the current directory, with this environment.
# The host's own userland (bash, python3, curl, the ASan runtime, QEMU) and
# build tree run unchanged on a hardware-style KVM. See docs/lab.md.
#
# Usage: tests/lab/in-lab.sh [--name NAME] -- CMD [ARG...]
# Prints CMD's output as it comes and exits with CMD's status; 125 if the
# lab itself failed (L1 did not boot, or ended without the command's status).
# Env: LAB_MEM (L1 memory, default 4G), LAB_SMP (L1 vCPUs, default 1: two
# vCPUs stalled on a loaded 2-core host), LAB_TIMEOUT (seconds, 3600),
# LAB_SLOTS (L1s allowed at once on this host, 2; later ones wait).
set -uo pipefail
name=job
while [ $# -gt 0 ]; do
	case "$1" in
	--name) name=$2; shift 2 ;;
	--) shift; break ;;
	*) echo "in-lab: unknown option '$1' (usage: in-lab.sh [--name NAME] -- CMD...)" >&2; exit 125 ;;
	esac
done
[ $# -gt 0 ] || { echo "in-lab: no command given" >&2; exit 125; }
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
die() { echo "in-lab: $name: $*" >&2; exit 125; }

command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing (scripts/deps.sh lab)"
case "$repo$PWD" in *[[:space:]]*) die "the tree's path has a space: '$repo' ('$PWD')" ;; esac
. "$here/l1.sh"
read -r L1_KERNEL L1_INITRD < <("$here/mkl1.sh") || die "cannot build the L1 initramfs"

# The job: a script in the tree (the tree is shared at its own path, so
# L1 sees it where we do). It recreates this environment, less what names
# this host's session (its runtime dir, terminal, make's job server).
jobs=$repo/${BUILD:-build}/lab/jobs
mkdir -p "$jobs"
job=$jobs/$name.sh
log=$jobs/$name.log
{
	echo "#!/bin/bash"
	export -p | grep -vE '^declare -x (BASH_[A-Z_]*|SHLVL|PWD|OLDPWD|_|XDG_[A-Z_]*|DBUS_[A-Z_]*|SSH_[A-Z_]*|TMPDIR|TERM|WISP_KVM_DEVICE|MAKEFLAGS|MFLAGS|MAKELEVEL|MAKEOVERRIDES|DISPLAY)(=|$)'
	echo "export LAB_L1=1"
	printf 'cd %q || exit 125\n' "$PWD"
	printf 'exec'
	printf ' %q' "$@"
	echo
} >"$job"

l1_slot "$name" || die "cannot take a lab slot"
echo "in-lab: $name: L1 on QEMU TCG ($(basename "$L1_KERNEL")), log in ${log#"$repo"/}" >&2
rm -f "$log"
l1_boot "${LAB_TIMEOUT:-3600}" "${LAB_MEM:-4G}" "LAB_JOB=$job LAB_REPO=$repo" \
	-virtfs local,path=/,mount_tag=hostroot,security_model=none,id=hostroot,multidevs=remap \
	-virtfs local,path="$repo",mount_tag=repo,security_model=none,id=repo,multidevs=remap |
	{
		inside=0 # only the job's own output; firmware and boot text go to the log
		while IFS= read -r l; do
			echo "[$(l1_stamp)] $l" >>"$log"
			case "$l" in
			*"lab-l1: job starts"*) inside=1 ;;
			*lab-job:*) inside=0 ;;
			*lab-l1:*FATAL*) printf '%s\n' "${l#*lab-l1: }" ;;
			*) [ $inside = 1 ] && printf '%s\n' "$l" ;;
			esac
		done
	}
total=$(l1_stamp)
up=$(sed -n 's/^\[\([0-9.]*\)\] .*lab-l1: job starts.*/\1/p' "$log" | head -1)
rc=$(sed -n 's/^\[[0-9.]*\] .*lab-job: exit \([0-9]*\) .*/\1/p' "$log" | tail -1)
if [ -z "$rc" ]; then
	echo "in-lab: $name: L1 ended without the command's exit status (after $total s); its last lines:" >&2
	grep -v '^\[[0-9.]*\] \(PASS\|SKIPPED\):' "$log" | tail -12 | sed 's/^/  | /' >&2
	exit 125
fi
echo "in-lab: $name: exit $rc; L1 ready after ${up:-?} s, whole run $total s" >&2
exit "$rc"
