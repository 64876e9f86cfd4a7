/* Scheduling policy queries and the no-op set of SCHED_OTHER; prints
 * results and errno names (compared with a native run). */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "try.h"

int main(void) {
    struct sched_param p = {0};
    TRY("getscheduler self", sched_getscheduler(0));
    TRY("getscheduler pid", sched_getscheduler(getpid()));
    TRY("getscheduler -1", sched_getscheduler(-1));
    TRY("getscheduler none", sched_getscheduler(999999));
    TRY("getparam", sched_getparam(0, &p));
    printf("priority %d\n", p.sched_priority);
    TRY("getparam NULL", syscall(SYS_sched_getparam, 0, NULL));
    TRY("max OTHER", sched_get_priority_max(SCHED_OTHER));
    TRY("min OTHER", sched_get_priority_min(SCHED_OTHER));
    TRY("max FIFO", sched_get_priority_max(SCHED_FIFO));
    TRY("min RR", sched_get_priority_min(SCHED_RR));
    TRY("max bogus", sched_get_priority_max(42));
    TRY("set OTHER 0", sched_setscheduler(0, SCHED_OTHER, &p));
    TRY("set OTHER|RESET_ON_FORK", sched_setscheduler(0, SCHED_OTHER | SCHED_RESET_ON_FORK, &p));
    p.sched_priority = 5;
    TRY("set OTHER 5", sched_setscheduler(0, SCHED_OTHER, &p));
    TRY("setparam 5", sched_setparam(0, &p));
    p.sched_priority = 100;
    TRY("set FIFO 100", sched_setscheduler(0, SCHED_FIFO, &p));
    TRY("set bogus", sched_setscheduler(0, 42, &p));
    TRY("set NULL", syscall(SYS_sched_setscheduler, 0, SCHED_OTHER, NULL));
    p.sched_priority = 0;
    TRY("setparam 0", sched_setparam(0, &p));
    TRY("getscheduler after", sched_getscheduler(0));
    struct timespec ts = {0};
    TRY("rr_get_interval", sched_rr_get_interval(0, &ts));
    printf("interval positive: %d\n", ts.tv_sec > 0 || ts.tv_nsec > 0);
    TRY("rr_get_interval none", sched_rr_get_interval(999999, &ts));
    return 0;
}
