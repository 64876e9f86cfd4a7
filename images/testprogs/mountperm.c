/* mount(2) and umount2(2) without CAP_SYS_ADMIN: the error order Linux
 * gives (bad flags, then the path, then EPERM). Drops root first, so a
 * native run changes nothing on the host. */
#define _GNU_SOURCE
#include <sys/mount.h>
#include <unistd.h>

#include "try.h"

int main(void) {
    setvbuf(stdout, 0, _IONBF, 0);
    if (setgid(1000) != 0 || setuid(1000) != 0) {
        printf("cannot drop root\n");
        return 1;
    }
    TRY("mount tmpfs", mount("tmpfs", "/tmp", "tmpfs", 0, "size=1m"));
    TRY("mount on a missing path", mount("tmpfs", "/no/such", "tmpfs", 0, 0));
    TRY("remount", mount(0, "/tmp", 0, MS_REMOUNT | MS_RDONLY, 0));
    TRY("umount2", umount2("/tmp", 0));
    TRY("umount2 detach", umount2("/tmp", MNT_DETACH));
    TRY("umount2 bad flags", umount2("/tmp", 0x100));
    TRY("umount2 expire with detach", umount2("/tmp", MNT_EXPIRE | MNT_DETACH));
    TRY("umount2 missing", umount2("/no/such", 0));
    return 0;
}
