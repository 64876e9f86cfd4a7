/* cpuburn N MS: N threads each spin until their own CPU time
 * (CLOCK_THREAD_CPUTIME_ID) reaches MS milliseconds. Prints the CPU count
 * the program sees (sched_getaffinity, get_nprocs, /proc/cpuinfo) and
 * "parallel X.X": the summed thread CPU time divided by the wall time,
 * i.e. how many CPUs ran the threads at once on average. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <time.h>

static long ms;

static double now(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *burn(void *arg) {
    volatile unsigned long x = 0;
    while (now(CLOCK_THREAD_CPUTIME_ID) < ms / 1000.0)
        for (int i = 0; i < 10000; i++)
            x += i;
    (void)arg;
    return NULL;
}

static int cpuinfo_cpus(void) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];
    int n = 0;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "processor", 9) == 0)
            n++;
    fclose(f);
    return n;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 2;
    ms = argc > 2 ? atol(argv[2]) : 300;
    cpu_set_t set;
    sched_getaffinity(0, sizeof set, &set);
    printf("affinity %d nprocs %d cpuinfo %d\n", CPU_COUNT(&set), get_nprocs(), cpuinfo_cpus());
    pthread_t t[64];
    double start = now(CLOCK_MONOTONIC);
    for (int i = 0; i < n && i < 64; i++)
        pthread_create(&t[i], NULL, burn, NULL);
    for (int i = 0; i < n && i < 64; i++)
        pthread_join(t[i], NULL);
    double wall = now(CLOCK_MONOTONIC) - start;
    printf("parallel %.1f\n", n * (ms / 1000.0) / wall);
    return 0;
}
