/* Clocks: monotonic is nondecreasing, nanosleep sleeps long enough. */
#include <stdio.h>
#include <sys/time.h>
#include <time.h>
static double now(clockid_t c) { struct timespec t; clock_gettime(c, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(void) {
    double a = now(CLOCK_MONOTONIC);
    struct timespec ten = {0, 10000000};
    nanosleep(&ten, 0);
    double b = now(CLOCK_MONOTONIC);
    printf("monotonic nondecreasing=%d slept>=10ms=%d\n", b >= a, b - a >= 0.0099);
    struct timeval tv;
    gettimeofday(&tv, 0);
    printf("realtime sane=%d\n", tv.tv_sec > 1600000000 && now(CLOCK_REALTIME) > 1600000000);
    return 0;
}
