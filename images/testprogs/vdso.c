/* The vDSO: present (AT_SYSINFO_EHDR), and its clocks agree with the
 * clock_gettime syscall, never go backwards (also across threads), and
 * gettimeofday/time agree with CLOCK_REALTIME. `vdso loop N` only calls
 * the libc clock functions N times (for --strace: no syscall expected). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CALLS 100000
#define CLOSE_NS 50000000LL

static long long ns_of(struct timespec t) { return t.tv_sec * 1000000000LL + t.tv_nsec; }

static long long libc_ns(clockid_t c) {
    struct timespec t;
    if (clock_gettime(c, &t) != 0) return -1;
    return ns_of(t);
}

static long long sys_ns(clockid_t c) {
    struct timespec t;
    if (syscall(SYS_clock_gettime, c, &t) != 0) return -1;
    return ns_of(t);
}

static long long diff(long long a, long long b) { return a > b ? a - b : b - a; }

/* libc and the syscall agree within CLOSE_NS (read as sys, libc, sys). */
static void close_to_syscall(const char *name, clockid_t c) {
    long long a = sys_ns(c), v = libc_ns(c), b = sys_ns(c);
    int ok = a >= 0 && v >= 0 && diff(v, a) < CLOSE_NS && diff(v, b) < CLOSE_NS;
    printf("%s close to syscall=%d\n", name, ok);
    if (!ok) fprintf(stderr, "%s: syscall %lld, libc %lld, syscall %lld\n", name, a, v, b);
}

static void getres_agrees(const char *name, clockid_t c) {
    struct timespec l = {0}, s = {0};
    int rl = clock_getres(c, &l), rs = syscall(SYS_clock_getres, c, &s);
    printf("%s getres agrees=%d\n", name, rl == rs && ns_of(l) == ns_of(s));
}

static int monotonic_over(int n, clockid_t c) {
    long long last = libc_ns(c);
    for (int i = 0; i < n; i++) {
        long long now = libc_ns(c);
        if (now < last) {
            fprintf(stderr, "went back: %lld after %lld\n", now, last);
            return 0;
        }
        last = now;
    }
    return 1;
}

static _Atomic long long latest;
static atomic_int backwards;

/* Whatever another thread has read, a later read here is not earlier. */
static void *race(void *arg) {
    (void)arg;
    for (int i = 0; i < CALLS; i++) {
        long long seen = atomic_load(&latest);
        long long now = libc_ns(CLOCK_MONOTONIC);
        if (now < seen) atomic_fetch_add(&backwards, 1);
        long long cur = atomic_load(&latest);
        while (cur < now && !atomic_compare_exchange_weak(&latest, &cur, now)) {}
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 2 && strcmp(argv[1], "loop") == 0) {
        long n = atol(argv[2]);
        struct timespec t;
        struct timeval tv;
        for (long i = 0; i < n; i++) {
            clock_gettime(CLOCK_MONOTONIC, &t);
            clock_gettime(CLOCK_REALTIME, &t);
            gettimeofday(&tv, 0);
            time(0);
        }
        printf("looped\n");
        return 0;
    }
    printf("vdso present=%d\n", getauxval(AT_SYSINFO_EHDR) != 0);
    printf("monotonic over %d calls=%d\n", CALLS, monotonic_over(CALLS, CLOCK_MONOTONIC));
    printf("monotonic_raw over %d calls=%d\n", CALLS, monotonic_over(CALLS, CLOCK_MONOTONIC_RAW));
    printf("monotonic_coarse over %d calls=%d\n", CALLS, monotonic_over(CALLS, CLOCK_MONOTONIC_COARSE));
    pthread_t th[2];
    for (int i = 0; i < 2; i++) pthread_create(&th[i], 0, race, 0);
    for (int i = 0; i < 2; i++) pthread_join(th[i], 0);
    printf("monotonic across threads=%d\n", atomic_load(&backwards) == 0);
    const struct { const char *name; clockid_t id; } clocks[] = {
        {"MONOTONIC", CLOCK_MONOTONIC},       {"REALTIME", CLOCK_REALTIME},
        {"MONOTONIC_RAW", CLOCK_MONOTONIC_RAW}, {"BOOTTIME", CLOCK_BOOTTIME},
        {"TAI", CLOCK_TAI},                   {"MONOTONIC_COARSE", CLOCK_MONOTONIC_COARSE},
        {"REALTIME_COARSE", CLOCK_REALTIME_COARSE},
    };
    for (unsigned i = 0; i < sizeof clocks / sizeof clocks[0]; i++) {
        close_to_syscall(clocks[i].name, clocks[i].id);
        getres_agrees(clocks[i].name, clocks[i].id);
    }
    /* TAI is REALTIME plus whole seconds. */
    long long tai = libc_ns(CLOCK_TAI) - libc_ns(CLOCK_REALTIME);
    printf("TAI - REALTIME whole seconds=%d\n", diff(tai, (tai + 500000000) / 1000000000 * 1000000000) < CLOSE_NS);
    struct timespec cpu;
    printf("thread cputime works=%d\n", clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu) == 0);
    printf("bad clock is EINVAL=%d\n", clock_gettime(12345, &cpu) != 0);
    struct timeval tv;
    long long real = sys_ns(CLOCK_REALTIME);
    gettimeofday(&tv, 0);
    long long tod = tv.tv_sec * 1000000000LL + tv.tv_usec * 1000LL;
    printf("gettimeofday close to REALTIME=%d\n", diff(tod, real) < CLOSE_NS);
    pid_t pid = fork();
    if (pid == 0) {
        long long a = sys_ns(CLOCK_MONOTONIC), v = libc_ns(CLOCK_MONOTONIC);
        _exit(getauxval(AT_SYSINFO_EHDR) != 0 && v >= a && v - a < CLOSE_NS ? 0 : 1);
    }
    int st;
    waitpid(pid, &st, 0);
    printf("clocks after fork=%d\n", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    time_t t = time(0);
    long long real2 = sys_ns(CLOCK_REALTIME);
    printf("time agrees with REALTIME=%d\n", t >= (real - CLOSE_NS) / 1000000000 && t <= (real2 + CLOSE_NS) / 1000000000);
    return 0;
}
