/* memfd_create: a memory file shared by read/write, MAP_SHARED mappings
 * and a forked child; /proc/self/fd naming; seals. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define TRY(name, call)                                                        \
    do {                                                                       \
        errno = 0;                                                             \
        long rc_ = (call);                                                     \
        printf("%s: %ld %s\n", name, rc_, rc_ < 0 ? strerror(errno) : "");     \
    } while (0)

int main(void) {
    setvbuf(stdout, 0, _IONBF, 0);
    int fd = memfd_create("demo", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    printf("cloexec=%d\n", (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    char link[64], target[128];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n >= 0) { target[n] = 0; printf("link=%s\n", target); }
    TRY("ftruncate", ftruncate(fd, 8192));
    struct stat st;
    fstat(fd, &st);
    printf("regular=%d size=%ld\n", S_ISREG(st.st_mode), (long)st.st_size);
    char *m = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    strcpy(m + 4096, "through the mapping");
    char buf[32] = {0};
    pread(fd, buf, 19, 4096);
    printf("read sees: %s\n", buf);
    pwrite(fd, "from write", 10, 0);
    printf("mapping sees: %.10s\n", m);
    pid_t c = fork();
    if (c == 0) { strcpy(m + 100, "child"); _exit(0); }
    waitpid(c, 0, 0);
    pread(fd, buf, 5, 100);
    printf("child wrote: %.5s\n", buf);
    int avail;
    lseek(fd, 8000, SEEK_SET);
    ioctl(fd, FIONREAD, &avail);
    printf("fionread=%d\n", avail);
    munmap(m, 8192);

    TRY("get seals", fcntl(fd, F_GET_SEALS));
    TRY("seal shrink+grow", fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW));
    TRY("shrink", ftruncate(fd, 4096));
    TRY("grow", ftruncate(fd, 16384));
    TRY("write past end", pwrite(fd, "x", 1, 8192));
    TRY("write inside", pwrite(fd, "x", 1, 10));
    TRY("seal write", fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE));
    TRY("write sealed", pwrite(fd, "x", 1, 10));
    void *w = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    TRY("writable shared map", w == MAP_FAILED ? -1 : 0);
    void *r = mmap(0, 4096, PROT_READ, MAP_SHARED, fd, 0);
    TRY("read-only shared map", r == MAP_FAILED ? -1 : 0);
    TRY("mprotect it writable", mprotect(r, 4096, PROT_READ | PROT_WRITE));
    TRY("seal seal", fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL));
    TRY("seal after seal", fcntl(fd, F_ADD_SEALS, F_SEAL_GROW));
    TRY("get seals", fcntl(fd, F_GET_SEALS));

    int plain = memfd_create("plain", 0);
    TRY("no sealing: get", fcntl(plain, F_GET_SEALS));
    TRY("no sealing: add", fcntl(plain, F_ADD_SEALS, F_SEAL_WRITE));
    TRY("seals on a pipe", fcntl(0, F_GET_SEALS) < 0 && errno == EINVAL ? -1 : 0);
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[299] = 0;
    TRY("long name", memfd_create(longname, 0));
    TRY("bad flags", memfd_create("x", 0x100));
    return 0;
}
