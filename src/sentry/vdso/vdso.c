/* The vDSO sandboxd maps into every guest process: clock_gettime,
 * gettimeofday, time and clock_getres computed from the TSC and the clock
 * data page (vvar) the sentry keeps, without leaving guest code. Anything
 * it cannot answer (CPU-time clocks, unknown ids, a host whose TSC is not
 * usable) becomes the real system call, which the sentry handles as usual.
 *
 * Freestanding: no libc, no relocations, no writable data. The vvar page
 * sits just below the image (see vdso.lds), reached RIP-relative. */
#include "vvar.h"

#define NSEC_PER_SEC 1000000000ull

#define CLOCK_REALTIME 0
#define CLOCK_MONOTONIC 1
#define CLOCK_MONOTONIC_RAW 4
#define CLOCK_REALTIME_COARSE 5
#define CLOCK_MONOTONIC_COARSE 6
#define CLOCK_BOOTTIME 7
#define CLOCK_TAI 11

#define SYS_gettimeofday 96
#define SYS_time 201
#define SYS_clock_gettime 228
#define SYS_clock_getres 229
#define SYS_getcpu 309

struct timespec {
    long tv_sec;
    long tv_nsec;
};
struct timeval {
    long tv_sec;
    long tv_usec;
};
struct timezone {
    int tz_minuteswest;
    int tz_dsttime;
};

extern const struct vvar sandboxd_vvar __attribute__((visibility("hidden")));

#define EXPORT __attribute__((visibility("default")))

static long sys2(long nr, long a, long b)
{
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a), "S"(b)
                     : "rcx", "r11", "memory");
    return ret;
}

static long sys3(long nr, long a, long b, long c)
{
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a), "S"(b), "d"(c)
                     : "rcx", "r11", "memory");
    return ret;
}

/* rdtsc fenced on both sides: it reads the counter after the seqlock's
 * first load and before its second one. */
static inline uint64_t tsc_now(void)
{
    uint32_t lo, hi;
    __asm__ volatile("lfence\n\trdtsc\n\tlfence" : "=a"(lo), "=d"(hi)::"memory");
    return (uint64_t)hi << 32 | lo;
}

static inline uint64_t line_at(const volatile struct vvar_line *l, uint64_t tsc, uint32_t shift)
{
    uint64_t base = l->base_tsc;
    /* A TSC read before the anchor (skew between CPUs) counts as the anchor. */
    uint64_t delta = tsc > base ? tsc - base : 0;
    return l->base_ns + (uint64_t)(((unsigned __int128)delta * l->mult) >> shift);
}

/* Nanoseconds of clock `id` now; 0 when the vDSO cannot answer. */
static uint64_t clock_ns(int id)
{
    const volatile struct vvar *v = &sandboxd_vvar;
    uint32_t seq;
    uint64_t ns, coarse;
    do {
        seq = v->seq;
        __asm__ volatile("" ::: "memory");
        if (seq & 1) {
            __asm__ volatile("pause");
            continue;
        }
        if (!(v->flags & VVAR_TSC_OK))
            return 0;
        uint64_t tsc = tsc_now();
        uint32_t shift = v->shift;
        coarse = v->coarse_ns;
        switch (id) {
        case CLOCK_MONOTONIC:
        case CLOCK_MONOTONIC_COARSE:
            ns = line_at(&v->mono, tsc, shift);
            break;
        case CLOCK_REALTIME:
        case CLOCK_REALTIME_COARSE:
            ns = line_at(&v->mono, tsc, shift) + v->real_off;
            break;
        case CLOCK_BOOTTIME:
            ns = line_at(&v->mono, tsc, shift) + v->boot_off;
            break;
        case CLOCK_TAI:
            ns = line_at(&v->mono, tsc, shift) + v->tai_off;
            break;
        case CLOCK_MONOTONIC_RAW:
            ns = line_at(&v->raw, tsc, shift);
            break;
        default:
            return 0;
        }
        __asm__ volatile("" ::: "memory");
    } while ((seq & 1) || v->seq != seq);
    if ((id == CLOCK_MONOTONIC_COARSE || id == CLOCK_REALTIME_COARSE) && coarse > 1)
        ns -= ns % coarse;
    return ns;
}

EXPORT int __vdso_clock_gettime(int id, struct timespec *ts)
{
    uint64_t ns = clock_ns(id);
    if (!ns)
        return sys2(SYS_clock_gettime, id, (long)ts);
    ts->tv_sec = ns / NSEC_PER_SEC;
    ts->tv_nsec = ns % NSEC_PER_SEC;
    return 0;
}

EXPORT int __vdso_gettimeofday(struct timeval *tv, struct timezone *tz)
{
    uint64_t ns = clock_ns(CLOCK_REALTIME);
    if (!ns)
        return sys2(SYS_gettimeofday, (long)tv, (long)tz);
    if (tv) {
        tv->tv_sec = ns / NSEC_PER_SEC;
        tv->tv_usec = ns % NSEC_PER_SEC / 1000;
    }
    if (tz) {
        tz->tz_minuteswest = 0;
        tz->tz_dsttime = 0;
    }
    return 0;
}

EXPORT long __vdso_time(long *t)
{
    uint64_t ns = clock_ns(CLOCK_REALTIME);
    if (!ns)
        return sys2(SYS_time, (long)t, 0);
    long sec = ns / NSEC_PER_SEC;
    if (t)
        *t = sec;
    return sec;
}

EXPORT int __vdso_clock_getres(int id, struct timespec *res)
{
    const volatile struct vvar *v = &sandboxd_vvar;
    long ns;
    switch (id) {
    case CLOCK_REALTIME:
    case CLOCK_MONOTONIC:
    case CLOCK_MONOTONIC_RAW:
    case CLOCK_BOOTTIME:
    case CLOCK_TAI:
        ns = 1;
        break;
    case CLOCK_REALTIME_COARSE:
    case CLOCK_MONOTONIC_COARSE:
        ns = v->coarse_ns;
        break;
    default:
        ns = 0;
    }
    if (!ns || !(v->flags & VVAR_TSC_OK))
        return sys2(SYS_clock_getres, id, (long)res);
    if (res) {
        res->tv_sec = 0;
        res->tv_nsec = ns;
    }
    return 0;
}

/* The CPU number is the sentry's business (no per-CPU data is kept here). */
EXPORT long __vdso_getcpu(unsigned *cpu, unsigned *node, void *unused)
{
    return sys3(SYS_getcpu, (long)cpu, (long)node, (long)unused);
}

int clock_gettime(int, struct timespec *) EXPORT __attribute__((weak, alias("__vdso_clock_gettime")));
int gettimeofday(struct timeval *, struct timezone *) EXPORT __attribute__((weak, alias("__vdso_gettimeofday")));
long time(long *) EXPORT __attribute__((weak, alias("__vdso_time")));
int clock_getres(int, struct timespec *) EXPORT __attribute__((weak, alias("__vdso_clock_getres")));
long getcpu(unsigned *, unsigned *, void *) EXPORT __attribute__((weak, alias("__vdso_getcpu")));
