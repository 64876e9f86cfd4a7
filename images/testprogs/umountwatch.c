/* inotify watches on a tmpfs that is unmounted see IN_UNMOUNT (with
 * IN_ISDIR for a directory) and then IN_IGNORED. Mounts, so it needs
 * CAP_SYS_ADMIN: run natively only inside a private mount namespace
 * (`unshare -m --propagation private`). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "try.h"

int main(void) {
    setvbuf(stdout, 0, _IONBF, 0);
    mkdir("/tmp/umountwatch", 0755);
    TRY("mount", mount("t", "/tmp/umountwatch", "tmpfs", 0, 0));
    int in = inotify_init1(IN_NONBLOCK);
    TRY("watch the root", inotify_add_watch(in, "/tmp/umountwatch", IN_CREATE));
    TRY("umount", umount2("/tmp/umountwatch", 0));
    char b[4096] __attribute__((aligned(8)));
    ssize_t n = read(in, b, sizeof b);
    for (char *q = b; n > 0 && q < b + n;) {
        struct inotify_event *e = (struct inotify_event *)q;
        printf("wd=%d mask=%#x\n", e->wd, e->mask);
        q += sizeof *e + e->len;
    }
    rmdir("/tmp/umountwatch");
    return 0;
}
