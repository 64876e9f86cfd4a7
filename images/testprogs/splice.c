/* splice(2), tee(2), vmsplice(2), copy_file_range(2) and sendfile(2):
 * data, offsets and errors as Linux gives them. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "try.h"

static char path[64], path2[64];

static void show_pipe(const char *what, int rfd) {
    char buf[256];
    int fl = fcntl(rfd, F_GETFL);
    fcntl(rfd, F_SETFL, fl | O_NONBLOCK);
    ssize_t n = read(rfd, buf, sizeof buf);
    fcntl(rfd, F_SETFL, fl);
    printf("%s: [%.*s]\n", what, n > 0 ? (int)n : 0, buf);
}

/* Whole transfers (a sandbox may return short counts past 1 MiB, as Linux allows). */
static void pwrite_all(int fd, const char *b, size_t n, off_t at) {
    for (size_t d = 0; d < n;) { ssize_t w = pwrite(fd, b + d, n - d, at + d); if (w <= 0) return; d += w; }
}
static void pread_all(int fd, char *b, size_t n, off_t at) {
    for (size_t d = 0; d < n;) { ssize_t r = pread(fd, b + d, n - d, at + d); if (r <= 0) return; d += r; }
}

static long pos(int fd) { return (long)lseek(fd, 0, SEEK_CUR); }

static void splices(void) {
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    write(fd, "0123456789abcdef", 16);
    int p[2], q[2];
    pipe(p);
    pipe(q);
    loff_t off = 4;
    TRY("file->pipe at offset", splice(fd, &off, p[1], NULL, 6, 0));
    printf("off now %ld, file offset %ld\n", (long)off, pos(fd));
    lseek(fd, 10, SEEK_SET);
    TRY("file->pipe at file offset", splice(fd, NULL, p[1], NULL, 100, 0));
    printf("file offset %ld\n", pos(fd));
    TRY("pipe->pipe", splice(p[0], NULL, q[1], NULL, 3, 0));
    show_pipe("first pipe keeps", p[0]);
    write(q[1], "XY", 2);
    off = 20;
    TRY("pipe->file at offset", splice(q[0], NULL, fd, &off, 100, 0));
    printf("off now %ld, file offset %ld\n", (long)off, pos(fd));
    char buf[64] = {0};
    pread(fd, buf, sizeof buf - 1, 0);
    printf("file: %s\n", buf);
    write(p[1], "tail", 4);
    lseek(fd, 0, SEEK_END);
    TRY("pipe->file at file offset", splice(p[0], NULL, fd, NULL, 2, 0));
    show_pipe("rest of the pipe", p[0]);
    printf("file offset %ld\n", pos(fd));

    /* errors */
    TRY("zero length", splice(fd, NULL, fd, NULL, 0, 0));
    TRY("no pipe", splice(fd, NULL, fd, NULL, 1, 0));
    off = 0;
    TRY("offset on a pipe", splice(p[0], &off, fd, NULL, 1, 0));
    TRY("offset on the out pipe", splice(fd, NULL, p[1], &off, 1, 0));
    TRY("same pipe", splice(p[0], NULL, p[1], NULL, 1, 0));
    TRY("bad flags", splice(fd, NULL, p[1], NULL, 1, 0x100));
    TRY("bad fd", splice(99, NULL, p[1], NULL, 1, 0));
    TRY("write end as input", splice(p[1], NULL, fd, NULL, 1, 0));
    off = -1;
    TRY("negative offset", splice(fd, &off, p[1], NULL, 1, 0));
    TRY("nonblock empty pipe", splice(p[0], NULL, fd, NULL, 1, SPLICE_F_NONBLOCK));
    int ap = open(path, O_WRONLY | O_APPEND);
    write(p[1], "z", 1);
    TRY("into O_APPEND", splice(p[0], NULL, ap, NULL, 1, 0));
    close(ap);
    show_pipe("drain", p[0]);

    /* a full pipe */
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    char big[4096];
    memset(big, 'b', sizeof big);
    long total = 0;
    for (;;) {
        ssize_t n = write(p[1], big, sizeof big);
        if (n <= 0) break;
        total += n;
    }
    printf("pipe took %ld\n", total);
    TRY("file->full pipe nonblock", splice(fd, NULL, p[1], NULL, 1, SPLICE_F_NONBLOCK));
    TRY("file->full pipe O_NONBLOCK", splice(fd, NULL, p[1], NULL, 1, 0));
    close(p[1]);
    close(p[0]);

    /* end of file and broken pipes */
    pipe(p);
    close(p[1]);
    TRY("pipe without writers", splice(p[0], NULL, fd, NULL, 10, 0));
    close(p[0]);
    pipe(p);
    close(p[0]);
    signal(SIGPIPE, SIG_IGN);
    TRY("pipe without readers", splice(fd, NULL, p[1], NULL, 10, 0));
    close(p[1]);
    close(q[0]);
    close(q[1]);
    close(fd);
}

static void tees(void) {
    int p[2], q[2], r[2];
    pipe(p);
    pipe(q);
    pipe(r);
    write(p[1], "hello tee", 9);
    TRY("tee", tee(p[0], q[0 + 1], 5, 0));
    TRY("tee again", tee(p[0], r[1], 100, 0));
    show_pipe("source keeps", p[0]);
    show_pipe("first copy", q[0]);
    show_pipe("second copy", r[0]);
    TRY("tee empty nonblock", tee(p[0], q[1], 5, SPLICE_F_NONBLOCK));
    TRY("tee same pipe", tee(p[0], p[1], 5, 0));
    int fd = open(path, O_RDWR);
    TRY("tee from a file", tee(fd, q[1], 5, 0));
    TRY("tee to a file", tee(p[0], fd, 5, 0));
    TRY("tee wrong ends", tee(p[1], q[0], 5, 0));
    TRY("tee bad flags", tee(p[0], q[1], 5, 0x40));
    TRY("tee zero", tee(p[0], q[1], 0, 0));
    close(fd);
    close(p[1]);
    TRY("tee after writers went", tee(p[0], q[1], 5, 0));
}

static void vmsplices(void) {
    int p[2];
    pipe(p);
    char a[] = "vm", b[] = "splice";
    struct iovec iov[2] = {{a, 2}, {b, 6}};
    TRY("vmsplice to pipe", vmsplice(p[1], iov, 2, 0));
    char x[4] = {0}, y[10] = {0};
    struct iovec out[2] = {{x, 3}, {y, 10}};
    TRY("vmsplice from pipe", vmsplice(p[0], out, 2, 0));
    printf("got [%s] [%s]\n", x, y);
    TRY("vmsplice empty nonblock", vmsplice(p[0], out, 2, SPLICE_F_NONBLOCK));
    int fd = open(path, O_RDWR);
    TRY("vmsplice on a file", vmsplice(fd, iov, 2, 0));
    TRY("vmsplice bad flags", vmsplice(p[1], iov, 2, 0x80));
    close(fd);
    close(p[0]);
    close(p[1]);
}

static void copies(void) {
    int in = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    write(in, "abcdefghijklmnopqrstuvwxyz", 26);
    int out = open(path2, O_RDWR | O_CREAT | O_TRUNC, 0600);
    loff_t oi = 2, oo = 5;
    TRY("copy with offsets", copy_file_range(in, &oi, out, &oo, 10, 0));
    printf("offsets %ld %ld, file offsets %ld %ld\n", (long)oi, (long)oo, pos(in), pos(out));
    lseek(in, 20, SEEK_SET);
    TRY("copy at file offsets", copy_file_range(in, NULL, out, NULL, 100, 0));
    printf("file offsets %ld %ld\n", pos(in), pos(out));
    char buf[64] = {0};
    ssize_t n = pread(out, buf, sizeof buf, 0);
    printf("out (%ld):", (long)n);
    for (ssize_t i = 0; i < n; i++) printf(" %02x", (unsigned char)buf[i]);
    printf("\n");
    oi = 30;
    TRY("past the end", copy_file_range(in, &oi, out, NULL, 5, 0));
    oi = 0, oo = 5;
    TRY("overlap in one file", copy_file_range(in, &oi, in, &oo, 10, 0));
    oi = 0, oo = 10;
    TRY("no overlap in one file", copy_file_range(in, &oi, in, &oo, 10, 0));
    pread(in, buf, 26, 0);
    printf("in: %.26s\n", buf);
    TRY("flags", copy_file_range(in, NULL, out, NULL, 5, 1));
    int dir = open("/tmp", O_RDONLY | O_DIRECTORY);
    TRY("from a directory", copy_file_range(dir, NULL, out, NULL, 5, 0));
    close(dir);
    int p[2];
    pipe(p);
    TRY("to a pipe", copy_file_range(in, NULL, p[1], NULL, 5, 0));
    close(p[0]);
    close(p[1]);
    int ro = open(path2, O_RDONLY);
    oi = 0;
    TRY("to a read-only fd", copy_file_range(in, &oi, ro, NULL, 5, 0));
    close(ro);
    int ap = open(path2, O_WRONLY | O_APPEND);
    TRY("to O_APPEND", copy_file_range(in, &oi, ap, NULL, 5, 0));
    close(ap);
    oi = -3;
    TRY("negative offset", copy_file_range(in, &oi, out, NULL, 5, 0));
    char shm[64];
    snprintf(shm, sizeof shm, "/dev/shm/splice-%d", getpid());
    int other = open(shm, O_RDWR | O_CREAT | O_TRUNC, 0600);
    oi = 0;
    TRY("across file systems", copy_file_range(in, &oi, other, NULL, 5, 0));
    oi = 26;
    TRY("across file systems, nothing to copy", copy_file_range(in, &oi, other, NULL, 5, 0));
    close(other);
    unlink(shm);

    /* a large copy and sendfile go all the way */
    static char blob[3 << 20];
    for (size_t i = 0; i < sizeof blob; i++) blob[i] = (char)(i * 7);
    ftruncate(in, 0);
    pwrite_all(in, blob, sizeof blob, 0);
    ftruncate(out, 0);
    oi = 0, oo = 0;
    TRY("large copy", copy_file_range(in, &oi, out, &oo, sizeof blob, 0));
    static char back[3 << 20];
    pread_all(out, back, sizeof back, 0);
    printf("large copy equal: %d\n", memcmp(blob, back, sizeof blob) == 0);
    ftruncate(out, 0);
    lseek(out, 0, SEEK_SET);
    off_t so = 1;
    TRY("sendfile", sendfile(out, in, &so, sizeof blob));
    printf("sendfile offset %ld, file offset %ld\n", (long)so, pos(in));
    close(in);
    close(out);
}

int main(void) {
    setvbuf(stdout, 0, _IONBF, 0);
    snprintf(path, sizeof path, "/tmp/splice-%d", getpid());
    snprintf(path2, sizeof path2, "/tmp/splice2-%d", getpid());
    splices();
    tees();
    vmsplices();
    copies();
    unlink(path);
    unlink(path2);
    return 0;
}
