/* File syscalls over the image: open/read/pread/lseek/fstat/stat, readlink,
 * getdents64 (sorted), and the errors Linux gives. Paths are relative so a
 * native run from the unpacked image prints the same. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
static int cmp(const void *a, const void *b) { return strcmp(*(char **)a, *(char **)b); }
int main(void) {
    char buf[64];
    int fd = open("data/hello.txt", O_RDONLY);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    printf("read %zd: %s", n, buf);
    n = pread(fd, buf, 5, 7);
    buf[n] = 0;
    printf("pread: %s\n", buf);
    printf("lseek end: %ld\n", (long)lseek(fd, 0, SEEK_END));
    struct stat st;
    fstat(fd, &st);
    printf("fstat size=%ld reg=%d mode=%o\n", (long)st.st_size, S_ISREG(st.st_mode), st.st_mode & 0777);
    close(fd);
    stat("data/dir", &st);
    printf("stat dir=%d\n", S_ISDIR(st.st_mode));
    n = readlink("data/link", buf, sizeof buf);
    printf("readlink: %.*s\n", (int)n, buf);
    lstat("data/link", &st);
    printf("lstat link=%d\n", S_ISLNK(st.st_mode));
    int dfd = open("data/dir", O_RDONLY | O_DIRECTORY);
    char dents[4096], *names[64];
    int count = 0;
    long got;
    while ((got = syscall(SYS_getdents64, dfd, dents, sizeof dents)) > 0) {
        for (long off = 0; off < got;) {
            struct dirent64 *d = (struct dirent64 *)(dents + off);
            if (count < 64) names[count++] = strdup(d->d_name);
            off += d->d_reclen;
        }
    }
    qsort(names, count, sizeof *names, cmp);
    printf("entries:");
    for (int i = 0; i < count; i++) printf(" %s", names[i]);
    printf("\n");
    const char *bad[] = {"data/missing", "data/dir", "data/hello.txt/x"};
    int modes[] = {O_RDONLY, O_WRONLY, O_RDONLY};
    for (int i = 0; i < 3; i++) {
        errno = 0;
        int r = open(bad[i], modes[i]);
        printf("open %s: %d %s\n", bad[i], r, strerror(errno));
    }
    return 0;
}
