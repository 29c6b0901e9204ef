/*
 * bough uffd-preload: a preload library for QEMU whose constructor makes a userfaultfd of QEMU's own
 * address space and parks it at a fixed descriptor (BOUGH_UFFD_FD), so the daemon can take a copy with
 * pidfd_getfd and track which guest pages QEMU writes (asynchronous write-protect + PAGEMAP_SCAN; see
 * src/Bough.Vmm/Tracking/WrittenPageTracker.cs). QEMU exports no such descriptor and a userfaultfd
 * always belongs to the address space of the process that made it, so this is the only code of Bough
 * that runs inside QEMU.
 *
 * It runs before QEMU's main(), while QEMU is still root and before its seccomp filter
 * (-sandbox) and its switch to the VM's uid (-runas); nothing here runs again afterwards. The
 * descriptor stays open (QEMU never closes descriptors it did not open) and is close-on-exec.
 * The constructor does nothing the daemon depends on: when the kernel refuses a userfaultfd (too old,
 * vm.unprivileged_userfaultfd, a seccomp policy around QEMU) or the descriptor number is taken, it
 * leaves QEMU exactly as it was and the daemon falls back to scanning every page QEMU holds. errno is
 * preserved, and LD_PRELOAD is removed from the environment so nothing QEMU might start inherits it.
 *
 * Built by Bough.Vmm.csproj (target BoughBuildUffdPreload) and embedded as a resource:
 *   gcc -O2 -shared -fPIC -nostartfiles -Wall -Wextra -Werror -Wl,--build-id=none -s -o uffd-preload.so uffd-preload.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Must match WrittenPageTracker.QemuDescriptor. */
#define BOUGH_UFFD_FD 1000

__attribute__((constructor)) static void bough_uffd_preload(void)
{
    int saved = errno;
    unsetenv("LD_PRELOAD");
    /* The number must be free: never replace a descriptor QEMU was given. */
    if (fcntl(BOUGH_UFFD_FD, F_GETFD) == -1 && errno == EBADF) {
        long fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
        if (fd >= 0) {
            if (fd != BOUGH_UFFD_FD) {
                /* Fails (EBADF) when RLIMIT_NOFILE is below the number: then there is no tracking. */
                (void)dup3((int)fd, BOUGH_UFFD_FD, O_CLOEXEC);
                close((int)fd);
            }
        }
    }
    errno = saved;
}
