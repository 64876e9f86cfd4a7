/* POSIX timers: periodic SIGEV_SIGNAL with a value, SIGEV_THREAD_ID, an
 * absolute TIMER_ABSTIME expiry, SIGEV_NONE, SIGEV_THREAD (glibc runs the
 * callback in a thread), gettime after disarm and after delete. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int thread_calls, thread_value;

static void on_expiry(union sigval v) {
    pthread_mutex_lock(&mu);
    thread_calls++;
    thread_value = v.sival_int;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN);
    sigprocmask(SIG_BLOCK, &set, NULL);

    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = SIGRTMIN;
    sev.sigev_value.sival_int = 77;
    timer_t tm;
    printf("create: %d\n", timer_create(CLOCK_MONOTONIC, &sev, &tm));
    struct itimerspec its = {{0, 10 * 1000 * 1000}, {0, 10 * 1000 * 1000}};
    timer_settime(tm, 0, &its, NULL);
    int good = 0;
    for (int i = 0; i < 5; i++) {
        siginfo_t si;
        if (sigwaitinfo(&set, &si) == SIGRTMIN && si.si_code == SI_TIMER && si.si_value.sival_int == 77)
            good++;
    }
    printf("periodic expiries with SI_TIMER and value: %d\n", good);
    struct itimerspec zero = {{0, 0}, {0, 0}}, cur;
    timer_settime(tm, 0, &zero, NULL);
    timer_gettime(tm, &cur);
    printf("disarmed: %ld %ld\n", (long)cur.it_value.tv_sec, cur.it_value.tv_nsec);

    /* Absolute expiry on CLOCK_MONOTONIC, 30 ms from now. */
    struct timespec now, t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &now);
    t0 = now;
    struct itimerspec abs = {{0, 0}, {now.tv_sec, now.tv_nsec + 30 * 1000 * 1000}};
    if (abs.it_value.tv_nsec >= 1000000000) { abs.it_value.tv_sec++; abs.it_value.tv_nsec -= 1000000000; }
    timer_settime(tm, TIMER_ABSTIME, &abs, NULL);
    siginfo_t si;
    sigwaitinfo(&set, &si);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    printf("absolute expiry after >= 30 ms: %s\n", ms >= 29 ? "yes" : "no");
    timer_delete(tm);
    errno = 0;
    printf("gettime after delete: %d %s\n", timer_gettime(tm, &cur), errno == EINVAL ? "EINVAL" : "?");

    /* SIGEV_NONE: nothing is sent, the time left is visible. */
    sev.sigev_notify = SIGEV_NONE;
    timer_create(CLOCK_REALTIME, &sev, &tm);
    struct itimerspec one = {{0, 0}, {5, 0}};
    timer_settime(tm, 0, &one, NULL);
    timer_gettime(tm, &cur);
    printf("SIGEV_NONE left between 4 and 5 s: %s\n", cur.it_value.tv_sec == 4 ? "yes" : "no");
    timer_delete(tm);

    /* SIGEV_THREAD_ID to this thread. */
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = SIGRTMIN;
    sev._sigev_un._tid = syscall(SYS_gettid);
    timer_create(CLOCK_MONOTONIC, &sev, &tm);
    struct itimerspec shot = {{0, 0}, {0, 5 * 1000 * 1000}};
    timer_settime(tm, 0, &shot, NULL);
    printf("SIGEV_THREAD_ID: %s\n", sigwaitinfo(&set, &si) == SIGRTMIN && si.si_code == SI_TIMER ? "ok" : "bad");
    timer_delete(tm);

    /* SIGEV_THREAD: glibc's helper thread runs the callback. */
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD;
    sev.sigev_notify_function = on_expiry;
    sev.sigev_value.sival_int = 5;
    timer_create(CLOCK_MONOTONIC, &sev, &tm);
    timer_settime(tm, 0, &shot, NULL);
    pthread_mutex_lock(&mu);
    while (thread_calls == 0) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    printf("SIGEV_THREAD callback value %d\n", thread_value);
    timer_delete(tm);
    return 0;
}
