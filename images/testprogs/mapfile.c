/* mapfile FILE: mappings of a writable file (a bind-mounted host file in
 * the sandbox) and their coherence with read(2), write(2) and ftruncate.
 * FILE must hold 2 pages of '.' when it starts. Afterwards it holds
 * "shared" at 0, "exit" at 4096 (written back at exit), 2 pages long;
 * "private" never reaches it. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "probe.h"

#define PG 4096L

static const char *probe(volatile char *p) { return probe_access(p, 0); }

static void show(const char *what, int fd, long off) {
    char b[10] = {0};
    pread(fd, b, 9, off);
    printf("%s: read(2) at %ld sees \"%s\"\n", what, off, b);
}

int main(int argc, char **argv) {
    if (argc != 2)
        return 2;
    catch_faults();
    int fd = open(argv[1], O_RDWR);
    char *s = mmap(0, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    char *p = mmap(0, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (fd < 0 || s == MAP_FAILED || p == MAP_FAILED) {
        perror("mapfile");
        return 1;
    }
    printf("private sees the file: %.3s\n", p);

    memcpy(s, "shared", 6);
    show("shared write", fd, 0);
    printf("private mapping of that page sees: %.6s\n", p);

    memcpy(p + PG, "private", 7);
    show("private write", fd, PG);
    printf("shared mapping sees: %.7s\n", s + PG);

    pwrite(fd, "written", 7, 100);
    printf("shared mapping sees write(2): %.7s\n", s + 100);
    char *n = mmap(0, PG, PROT_READ, MAP_SHARED, fd, 0);
    printf("new mapping sees write(2): %.7s\n", n + 100);
    char *q = mmap(0, PG, PROT_READ, MAP_PRIVATE, fd, 0);
    printf("new private mapping sees write(2): %.7s\n", q + 100);

    printf("msync: %d\n", msync(s, 2 * PG, MS_SYNC));
    pid_t pid = fork();
    if (pid == 0) {
        memcpy(s + 200, "child", 5);
        _exit(0);
    }
    waitpid(pid, 0, 0);
    show("child's shared write", fd, 200);

    ftruncate(fd, PG);
    printf("past the new end: %s\n", probe(s + PG));
    ftruncate(fd, 2 * PG);
    printf("grown back: %s, reads zero: %d\n", probe(s + PG), s[PG] == 0);
    pwrite(fd, "........", 8, 100);
    memset(s + 200, '.', 5);
    memcpy(s + PG, "exit", 4);
    /* No munmap, no msync: exit writes it back. */
    return 0;
}
