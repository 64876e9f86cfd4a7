/* An unimplemented syscall must fail with ENOSYS, never fake success. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void) {
    long r = syscall(SYS_io_uring_setup, 0, 0);
    printf("r=%ld errno=%s\n", r, errno == ENOSYS ? "ENOSYS" : strerror(errno));
    return 0;
}
