/* Vectored and positioned I/O: preadv, pwritev, preadv2, pwritev2 (offset
 * -1, RWF_APPEND, RWF_SYNC, bad flags) and readahead, with their errors. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

static const char *err(long r) { return r < 0 ? strerrorname_np(errno) : "ok"; }

int main(void) {
    char path[] = "/tmp/vecioXXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    struct iovec w[2] = {{"hello ", 6}, {"world\n", 6}};
    printf("pwritev at 4: %zd\n", pwritev(fd, w, 2, 4));
    printf("offset after: %ld\n", (long)lseek(fd, 0, SEEK_CUR));
    char a[3], b[20];
    struct iovec r[2] = {{a, sizeof a}, {b, sizeof b}};
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    ssize_t n = preadv(fd, r, 2, 4);
    printf("preadv at 4: %zd [%.3s][%.*s]\n", n, a, (int)(n - 3), b);
    n = pwritev2(fd, w, 1, -1, 0);
    printf("pwritev2 -1: %zd, offset now %ld\n", n, (long)lseek(fd, 0, SEEK_CUR));
    n = pwritev2(fd, w + 1, 1, 0, RWF_APPEND | RWF_SYNC);
    printf("pwritev2 append: %zd, size %ld\n", n, (long)lseek(fd, 0, SEEK_END));
    lseek(fd, 4, SEEK_SET);
    memset(b, 0, sizeof b);
    struct iovec one = {b, 5};
    n = preadv2(fd, &one, 1, -1, 0);
    printf("preadv2 -1: %zd [%.5s], offset now %ld\n", n, b, (long)lseek(fd, 0, SEEK_CUR));
    printf("preadv2 bad flags: %s\n", err(preadv2(fd, &one, 1, 0, 0x1000)));
    printf("preadv negative offset: %s\n", err(preadv(fd, &one, 1, -5)));
    printf("readahead file: %s\n", err(readahead(fd, 0, 4096)));
    int p[2];
    pipe(p);
    printf("readahead pipe: %s\n", err(readahead(p[0], 0, 10)));
    printf("preadv pipe: %s\n", err(preadv(p[0], &one, 1, 0)));
    printf("preadv2 pipe nowait: %s\n", err(preadv2(p[0], &one, 1, -1, RWF_NOWAIT)));
    write(p[1], "xy", 2);
    n = preadv2(p[0], &one, 1, -1, RWF_NOWAIT);
    printf("preadv2 pipe with data: %zd\n", n);
    printf("readahead write-only: %s\n", err(readahead(p[1], 0, 10)));
    printf("readahead bad fd: %s\n", err(readahead(99, 0, 10)));
    return 0;
}
