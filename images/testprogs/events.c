/* eventfd, timerfd and signalfd: counters, semaphores, blocking and
 * non-blocking reads, timers and their settings, signals read as records. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TRY(name, call)                                                        \
    do {                                                                       \
        errno = 0;                                                             \
        long rc_ = (call);                                                     \
        printf("%s: %ld %s\n", name, rc_, rc_ < 0 ? strerror(errno) : "");     \
    } while (0)

static void on_usr2(int s) { (void)s; }

static void eventfds(void) {
    uint64_t v = 0;
    int e = eventfd(3, EFD_NONBLOCK | EFD_CLOEXEC);
    printf("eventfd cloexec=%d nonblock=%d\n", (fcntl(e, F_GETFD) & FD_CLOEXEC) != 0,
           (fcntl(e, F_GETFL) & O_NONBLOCK) != 0);
    v = 4;
    TRY("write 4", write(e, &v, 8));
    TRY("read", read(e, &v, 8));
    printf("value=%llu\n", (unsigned long long)v);
    TRY("read empty", read(e, &v, 8));
    TRY("short read", read(e, &v, 4));
    v = UINT64_MAX;
    TRY("write max", write(e, &v, 8));
    v = UINT64_MAX - 1;
    TRY("write max-1", write(e, &v, 8));
    v = 1;
    TRY("write overflow", write(e, &v, 8));
    struct pollfd pf = {e, POLLIN | POLLOUT, 0};
    int n = poll(&pf, 1, 0);
    printf("full poll: %d revents=%#x\n", n, pf.revents);
    read(e, &v, 8);
    close(e);

    int s = eventfd(2, EFD_SEMAPHORE);
    read(s, &v, 8);
    printf("sem read=%llu\n", (unsigned long long)v);
    read(s, &v, 8);
    printf("sem read=%llu\n", (unsigned long long)v);
    pf.fd = s;
    pf.events = POLLIN;
    n = poll(&pf, 1, 0);
    printf("sem empty poll: %d\n", n);
    /* a blocking read woken by a child's write */
    pid_t c = fork();
    if (c == 0) { usleep(30000); v = 5; write(s, &v, 8); _exit(0); }
    read(s, &v, 8);
    printf("blocked sem read=%llu\n", (unsigned long long)v);
    waitpid(c, 0, 0);
    /* FIONBIO makes it non-blocking */
    int on = 1;
    ioctl(s, FIONBIO, &on);
    printf("fionbio nonblock=%d\n", (fcntl(s, F_GETFL) & O_NONBLOCK) != 0);
    while (read(s, &v, 8) == 8) {}
    printf("drained errno=%s\n", strerror(errno));
    /* a blocking read interrupted by a signal */
    on = 0;
    ioctl(s, FIONBIO, &on);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr2;
    sigaction(SIGUSR2, &sa, 0);
    pid_t parent = getpid();
    c = fork();
    if (c == 0) { usleep(30000); kill(parent, SIGUSR2); _exit(0); }
    TRY("interrupted read", read(s, &v, 8));
    waitpid(c, 0, 0);
    TRY("eventfd bad flags", eventfd(0, 0x10));
    close(s);
}

static void timerfds(void) {
    int t = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    uint64_t v;
    TRY("idle read", read(t, &v, 8));
    struct itimerspec its = {{0, 0}, {0, 20 * 1000 * 1000}}, old;
    TRY("settime", timerfd_settime(t, 0, &its, &old));
    printf("old value=%ld.%09ld\n", (long)old.it_value.tv_sec, old.it_value.tv_nsec);
    struct itimerspec cur;
    timerfd_gettime(t, &cur);
    printf("armed: %d interval=%ld\n", cur.it_value.tv_nsec > 0 && cur.it_value.tv_nsec <= 20000000,
           cur.it_interval.tv_nsec);
    struct pollfd pf = {t, POLLIN, 0};
    int n = poll(&pf, 1, 2000);
    printf("poll: %d revents=%#x\n", n, pf.revents);
    TRY("read", read(t, &v, 8));
    printf("expirations=%llu\n", (unsigned long long)v);
    timerfd_gettime(t, &cur);
    printf("after one-shot: %ld.%09ld\n", (long)cur.it_value.tv_sec, cur.it_value.tv_nsec);
    TRY("short read", read(t, &v, 4));

    /* periodic, blocking read */
    int fl = fcntl(t, F_GETFL);
    fcntl(t, F_SETFL, fl & ~O_NONBLOCK);
    its.it_interval.tv_nsec = 10 * 1000 * 1000;
    its.it_value.tv_nsec = 10 * 1000 * 1000;
    timerfd_settime(t, 0, &its, 0);
    read(t, &v, 8);
    printf("periodic first read >=1: %d\n", v >= 1);
    usleep(55000);
    read(t, &v, 8);
    printf("periodic after 55ms >=4: %d\n", v >= 4);
    its.it_value.tv_nsec = 0;
    TRY("disarm", timerfd_settime(t, 0, &its, &old));
    printf("old interval=%ld\n", old.it_interval.tv_nsec);
    close(t);

    /* absolute, on CLOCK_REALTIME */
    t = timerfd_create(CLOCK_REALTIME, 0);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    its.it_interval.tv_sec = its.it_interval.tv_nsec = 0;
    its.it_value = now;
    its.it_value.tv_nsec += 20 * 1000 * 1000;
    if (its.it_value.tv_nsec >= 1000000000) { its.it_value.tv_sec++; its.it_value.tv_nsec -= 1000000000; }
    TRY("abstime", timerfd_settime(t, TFD_TIMER_ABSTIME, &its, 0));
    TRY("abs read", read(t, &v, 8));
    /* an absolute time in the past fires at once */
    its.it_value.tv_sec -= 100;
    timerfd_settime(t, TFD_TIMER_ABSTIME, &its, 0);
    TRY("past read", read(t, &v, 8));
    close(t);

    t = timerfd_create(CLOCK_BOOTTIME, 0);
    TRY("boottime", t >= 0 ? 0 : -1);
    close(t);
    TRY("bad clock", timerfd_create(CLOCK_PROCESS_CPUTIME_ID, 0));
    TRY("bad flags", timerfd_create(CLOCK_MONOTONIC, 0x10));
    TRY("settime bad flags", timerfd_settime(0, 0x10, &its, 0));
    TRY("settime not timerfd", timerfd_settime(0, 0, &its, 0));
    its.it_value.tv_nsec = 2000000000L;
    int u = timerfd_create(CLOCK_MONOTONIC, 0);
    TRY("settime bad nsec", timerfd_settime(u, 0, &its, 0));
    close(u);
}

static void signalfds(void) {
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    sigaddset(&m, SIGRTMIN);
    sigprocmask(SIG_BLOCK, &m, 0);
    int s = signalfd(-1, &m, SFD_NONBLOCK | SFD_CLOEXEC);
    struct signalfd_siginfo si[4];
    TRY("empty read", read(s, si, sizeof si));
    TRY("short read", read(s, si, 100));
    kill(getpid(), SIGUSR1);
    union sigval val = {.sival_int = 77};
    sigqueue(getpid(), SIGRTMIN, val);
    sigqueue(getpid(), SIGRTMIN, val);
    struct pollfd pf = {s, POLLIN, 0};
    int n = poll(&pf, 1, 0);
    printf("poll: %d revents=%#x\n", n, pf.revents);
    n = read(s, si, sizeof si);
    printf("read %d records\n", n / (int)sizeof si[0]);
    for (int i = 0; i < n / (int)sizeof si[0]; i++)
        printf("  signo=%s code=%d from_me=%d int=%d\n", si[i].ssi_signo == SIGUSR1 ? "USR1" : "RTMIN",
               si[i].ssi_code, si[i].ssi_pid == (uint32_t)getpid(), si[i].ssi_int);
    sigset_t pend;
    sigpending(&pend);
    printf("still pending: %d\n", sigismember(&pend, SIGUSR1));

    /* update the mask in place */
    sigaddset(&m, SIGUSR2);
    sigprocmask(SIG_BLOCK, &m, 0);
    TRY("update mask", signalfd(s, &m, 0));
    raise(SIGUSR2);
    n = read(s, si, sizeof si);
    printf("after update: %d records signo_usr2=%d\n", n / (int)sizeof si[0], si[0].ssi_signo == SIGUSR2);

    /* blocking read woken by a child's signal; epoll on the signalfd */
    int ep = epoll_create1(0);
    struct epoll_event e = {.events = EPOLLIN, .data.u64 = 9}, ev[2];
    epoll_ctl(ep, EPOLL_CTL_ADD, s, &e);
    pid_t parent = getpid();
    pid_t c = fork();
    if (c == 0) { usleep(30000); kill(parent, SIGUSR1); _exit(0); }
    n = epoll_wait(ep, ev, 2, 5000);
    printf("epoll on signalfd: %d data=%llu\n", n, (unsigned long long)ev[0].data.u64);
    n = read(s, si, sizeof si);
    printf("read %d signo_usr1=%d\n", n / (int)sizeof si[0], si[0].ssi_signo == SIGUSR1);
    waitpid(c, 0, 0);
    /* SIGCHLD through a signalfd */
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, 0);
    int cs = signalfd(-1, &chld, 0);
    c = fork();
    if (c == 0) _exit(7);
    n = read(cs, si, sizeof si);
    printf("sigchld: %d code=%d status=%d child=%d\n", n / (int)sizeof si[0], si[0].ssi_code,
           si[0].ssi_status, si[0].ssi_pid == (uint32_t)c);
    waitpid(c, 0, 0);
    TRY("bad size", syscall(289, -1, &m, 4, 0));
    TRY("not signalfd", signalfd(ep, &m, 0));
    TRY("bad flags", syscall(289, -1, &m, 8, 0x10));
    close(s);
    close(cs);
}

int main(void) {
    setvbuf(stdout, 0, _IONBF, 0);
    eventfds();
    timerfds();
    signalfds();
    return 0;
}
