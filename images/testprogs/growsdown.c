/* growsdown: MAP_GROWSDOWN mappings grow down on a fault below them (by
 * the guest or inside a system call), up to RLIMIT_STACK and never within
 * the stack guard gap (1 MiB) of an accessible mapping below, and never
 * for MAP_SHARED. Prints the mapping sizes /proc/self/maps reports. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "probe.h"

#define PG 4096UL
#define MIB (1UL << 20)

static const char *probe(volatile char *p) { return probe_access(p, 1); }

/* Pages of the mapping that holds `addr`, as /proc/self/maps has it. */
static long pages_of(void *addr) {
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    long pages = -1;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && lo <= (unsigned long)addr &&
            (unsigned long)addr < hi)
            pages = (hi - lo) / PG;
    }
    if (f)
        fclose(f);
    return pages;
}

static char *map_at(unsigned long at, size_t len, int prot, int extra) {
    char *p = mmap((void *)at, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | extra,
                   -1, 0);
    if (p == MAP_FAILED) {
        printf("mmap at %#lx: %s\n", at, strerror(errno));
        exit(1);
    }
    return p;
}

static void grows(void) {
    const char *r;
    char *g = map_at(0x200000000000UL, 4 * PG, PROT_READ | PROT_WRITE, MAP_GROWSDOWN);
    printf("mapped: %ld pages\n", pages_of(g));
    r = probe(g - 1);
    printf("write one byte below: %s, %ld pages\n", r, pages_of(g));
    r = probe(g - 100 * PG);
    printf("write 100 pages below: %s, %ld pages\n", r, pages_of(g));
    int fds[2];
    if (pipe(fds) == 0) {
        write(fds[1], "kernel", 6);
        ssize_t n = read(fds[0], g - 103 * PG, 6);
        printf("read(2) into 103 pages below: %zd, %ld pages, %.6s\n", n, pages_of(g),
               g - 103 * PG);
        close(fds[0]);
        close(fds[1]);
    }
    printf("grown pages read zero: %d\n", g[-50 * (long)PG] == 0);
}

static void guard_gap(void) {
    const char *r;
    unsigned long base = 0x210000000000UL;
    map_at(base, PG, PROT_READ | PROT_WRITE, 0);
    char *s = map_at(base + PG + 2 * MIB, 4 * PG, PROT_READ | PROT_WRITE, MAP_GROWSDOWN);
    printf("gap: 1.5 MiB below: %s\n", probe(s - 3 * MIB / 2));
    r = probe(s - MIB / 2);
    printf("gap: 0.5 MiB below: %s, %ld pages\n", r, pages_of(s));
    r = probe(s - 5 * MIB / 4);
    printf("gap: 1.25 MiB below: %s, %ld pages\n", r, pages_of(s));

    /* An inaccessible mapping below needs no gap. */
    unsigned long b2 = 0x220000000000UL;
    map_at(b2, PG, PROT_NONE, 0);
    char *t = map_at(b2 + PG + 64 * PG, 4 * PG, PROT_READ | PROT_WRITE, MAP_GROWSDOWN);
    r = probe((char *)b2 + PG);
    printf("gap: right above PROT_NONE: %s, %ld pages\n", r, pages_of(t));
}

static void rlimit(void) {
    const char *r;
    struct rlimit rl = {256 * 1024, RLIM_INFINITY};
    setrlimit(RLIMIT_STACK, &rl);
    char *t = map_at(0x230000000000UL, 4 * PG, PROT_READ | PROT_WRITE, MAP_GROWSDOWN);
    r = probe(t - 128 * 1024);
    printf("rlimit: 128 KiB below: %s, %ld pages\n", r, pages_of(t));
    r = probe(t - 512 * 1024);
    printf("rlimit: 512 KiB below: %s, %ld pages\n", r, pages_of(t));
    r = probe(t + 4 * PG - 256 * 1024);
    printf("rlimit: to exactly 256 KiB: %s, %ld pages\n", r, pages_of(t));
}

static void not_shared(void) {
    void *p = mmap(0, PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_GROWSDOWN, -1, 0);
    printf("shared growsdown: %s\n", p == MAP_FAILED ? strerror(errno) : "mapped");
}

int main(void) {
    catch_faults();
    setvbuf(stdout, 0, _IONBF, 0);
    grows();
    guard_gap();
    rlimit();
    not_shared();
    return 0;
}
