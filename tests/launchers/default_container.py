"""Run a command as a default container would: Docker's default capability set (no
CAP_SYS_ADMIN) and a seccomp filter that refuses new namespaces (unshare, setns, clone with a
namespace flag, clone3), as Docker's default seccomp profile does. As a non-root user it is the
"user namespaces refused" host: the same filter, with no_new_privs (which seccomp needs there).

    python default_container.py COMMAND [ARG...]

Used by the confinement matrix (tests/test_confinement_matrix.py); it installs nothing on the
host and changes nothing outside its own process, which then execs COMMAND.
"""
import ctypes
import os
import platform
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from autograder.sandbox.box import syscall_filter  # noqa: E402

# Docker's default capabilities (moby's oci/caps/defaults.go), by number.
DOCKER_CAPABILITIES = {0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31}  # CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID
# SETUID SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP
PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 24, 38


def main() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if os.geteuid() == 0:
        last = int(open("/proc/sys/kernel/cap_last_cap").read())
        for capability in range(last + 1):
            if capability not in DOCKER_CAPABILITIES:
                libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0)
    else:
        libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    reason = syscall_filter.install_only(("unshare", "setns"))
    if reason:
        sys.exit(f"default_container: {reason}")
    os.execvp(sys.argv[1], sys.argv[1:])


if __name__ == "__main__" and platform.system() == "Linux":
    main()
