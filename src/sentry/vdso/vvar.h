/* The clock data page ("vvar") the sentry keeps for the vDSO. The sentry
 * (src/sentry/vdso/vvar.rs) writes the same layout; keep them in step. */
#ifndef SANDBOXD_VVAR_H
#define SANDBOXD_VVAR_H

#include <stdint.h>

/* vvar.flags: the TSC may be used (invariant TSC, calibrated). */
#define VVAR_TSC_OK 1u

/* A clock as a line over the TSC: ns = base_ns + ((tsc - base_tsc) * mult) >> shift. */
struct vvar_line {
    uint64_t base_tsc;
    uint64_t base_ns;
    uint64_t mult;
};

struct vvar {
    /* Seqlock: odd while the sentry rewrites the fields below. */
    uint32_t seq;
    uint32_t flags;
    uint32_t shift;
    uint32_t pad;
    struct vvar_line mono; /* CLOCK_MONOTONIC */
    struct vvar_line raw;  /* CLOCK_MONOTONIC_RAW */
    int64_t real_off;      /* CLOCK_REALTIME - CLOCK_MONOTONIC, ns */
    int64_t boot_off;      /* CLOCK_BOOTTIME - CLOCK_MONOTONIC, ns */
    int64_t tai_off;       /* CLOCK_TAI - CLOCK_MONOTONIC, ns */
    uint64_t coarse_ns;    /* resolution of the *_COARSE clocks */
};

_Static_assert(__builtin_offsetof(struct vvar, mono) == 16, "vvar layout");
_Static_assert(__builtin_offsetof(struct vvar, raw) == 40, "vvar layout");
_Static_assert(__builtin_offsetof(struct vvar, real_off) == 64, "vvar layout");
_Static_assert(__builtin_offsetof(struct vvar, coarse_ns) == 88, "vvar layout");
_Static_assert(sizeof(struct vvar) == 96, "vvar layout");

#endif
