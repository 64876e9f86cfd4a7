/* File benchmarks of issue 5:
 *   files read PATH      read PATH (64 MiB) twice in 1 MiB reads: ms and MiB/s of each
 *   files stat PATH N    stat(PATH) N times: ns per call
 *   files create DIR N   create N empty files in DIR, then delete them: us per file each */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int bench_read(const char *path) {
    static char buf[1 << 20];
    for (int round = 0; round < 2; round++) {
        double t0 = now();
        int fd = open(path, O_RDONLY);
        if (fd < 0) { perror(path); return 1; }
        long total = 0;
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0) total += n;
        close(fd);
        double dt = now() - t0;
        printf("%s %ld MiB in %.1f ms (%.0f MiB/s)%s", round ? ", again" : "read",
               total >> 20, dt * 1e3, (total >> 20) / dt, round ? "\n" : "");
    }
    return 0;
}

static int bench_stat(const char *path, long n) {
    struct stat st;
    double t0 = now();
    for (long i = 0; i < n; i++)
        if (stat(path, &st) != 0) { perror(path); return 1; }
    printf("stat: %.0f ns/call\n", (now() - t0) * 1e9 / n);
    return 0;
}

static int bench_create(const char *dir, long n) {
    char p[512];
    double t0 = now();
    for (long i = 0; i < n; i++) {
        snprintf(p, sizeof p, "%s/f%ld", dir, i);
        int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd < 0) { perror(p); return 1; }
        close(fd);
    }
    double t1 = now();
    for (long i = 0; i < n; i++) {
        snprintf(p, sizeof p, "%s/f%ld", dir, i);
        if (unlink(p) != 0) { perror(p); return 1; }
    }
    double t2 = now();
    printf("%ld files: create %.1f us/file, delete %.1f us/file (%.0f ms in all)\n", n,
           (t1 - t0) * 1e6 / n, (t2 - t1) * 1e6 / n, (t2 - t0) * 1e3);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "read")) return bench_read(argv[2]);
    if (argc == 4 && !strcmp(argv[1], "stat")) return bench_stat(argv[2], atol(argv[3]));
    if (argc == 4 && !strcmp(argv[1], "create")) return bench_create(argv[2], atol(argv[3]));
    fprintf(stderr, "usage: files read PATH | stat PATH N | create DIR N\n");
    return 2;
}
