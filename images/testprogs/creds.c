/* Credentials: groups, the setres*id family, and losing root for good. */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void) {
    gid_t g[] = {20, 10};
    printf("setgroups=%d ngroups=%d\n", setgroups(2, g), getgroups(0, 0));
    unsigned cap[6] = {0};
    unsigned hdr[2] = {0x20080522, 0};
    syscall(SYS_capget, hdr, cap);
    printf("root has CAP_SETUID=%d\n", (cap[0] >> 7) & 1);
    printf("setresgid=%d setresuid=%d\n", setresgid(1000, 1000, 0), setresuid(1000, 1000, 0));
    uid_t r, e, s;
    getresuid(&r, &e, &s);
    printf("r=%u e=%u s=%u\n", r, e, s);
    printf("back to saved root: %d euid=%u\n", seteuid(0), geteuid());
    setresuid(1000, 1000, 1000);
    errno = 0;
    int rc = setuid(0);
    printf("setuid(0) after dropping: %d eperm=%d\n", rc, errno == EPERM);
    syscall(SYS_capget, hdr, cap);
    printf("user has CAP_SETUID=%d\n", (cap[0] >> 7) & 1);
    errno = 0;
    rc = setgroups(0, 0);
    printf("setgroups as user: %d eperm=%d\n", rc, errno == EPERM);
    return 0;
}
