# shellcheck shell=bash
# The one include of a test that runs in the VM (tests/kernel,
# tests/multivm): the KTAP emitter and the helpers for disks, NBD and the
# dm-colo targets. A test then says what to clean up: vm_test_on_exit, or
# pair_test or ctl_test (colo.sh) for the two-node beds.
_vm_test_lib=$(dirname "${BASH_SOURCE[0]}")
. "$_vm_test_lib/ktap.sh"
. "$_vm_test_lib/blk.sh"
. "$_vm_test_lib/nbd.sh"
. "$_vm_test_lib/colo.sh"
unset _vm_test_lib

# vm_test_on_exit SCRATCH [DMNAME...]: the test's clean-up, run on exit
# and when the runner kills it at its time limit (TERM), whatever state a
# failure left things in: the test's own test_stop if it defines one (its
# writers, its other devices), the dm devices DMNAME (the top one first),
# the pair (pair_test) or what dmcoloctl made (ctl_test), the settings
# writeback_save saved, the test disks, and the files and folders
# SCRATCH* (SCRATCH is under /tmp).
vm_test_on_exit() {
	_vm_test_scratch=$1
	shift
	_vm_test_dm=("$@")
	trap vm_test_cleanup EXIT
	trap 'exit 124' TERM
}

vm_test_cleanup() {
	if declare -F test_stop > /dev/null; then test_stop; fi
	if [ ${#_vm_test_dm[@]} -gt 0 ]; then
		dm_remove "${_vm_test_dm[@]}"
		dm_node_clean "${_vm_test_dm[@]}"
	fi
	[ -z "${_pair_nbds+set}" ] || pair_test_teardown
	# (an empty array counts as unset: a flag says ctl_test was called)
	[ -z "${_ctl_test:-}" ] || ctl_teardown p s ${_ctl_dm[@]+"${_ctl_dm[@]}"}
	writeback_restore
	disk_teardown
	case $_vm_test_scratch in /tmp/?*) rm -rf -- "$_vm_test_scratch"* ;; esac
}
