/* epoll over pipes and eventfds: level and edge triggering, one-shot,
 * nested epolls, closing a watched fd, timeouts, EINTR, argument errors. */
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
#include <sys/wait.h>
#include <unistd.h>

static void on_usr1(int s) { (void)s; }

/* Prints a call's result and, when it failed, its errno. */
#define TRY(name, call)                                                              \
    do {                                                                             \
        errno = 0;                                                                   \
        long rc_ = (call);                                                           \
        printf("%s: %ld %s\n", name, rc_, rc_ < 0 ? strerror(errno) : "");           \
    } while (0)

static int wait1(int ep, int ms, struct epoll_event *ev) {
    int n = epoll_wait(ep, ev, 8, ms);
    return n;
}

static void show(const char *what, int n, struct epoll_event *ev) {
    printf("%s: %d", what, n);
    for (int i = 0; i < n; i++) printf(" [data=%llu ev=%#x]", (unsigned long long)ev[i].data.u64, ev[i].events);
    printf("\n");
}

int main(void) {
    struct epoll_event ev[8], e;
    int p[2];
    pipe(p);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    printf("cloexec=%d\n", (fcntl(ep, F_GETFD) & FD_CLOEXEC) != 0);

    memset(&e, 0, sizeof e);
    e.events = EPOLLIN;
    e.data.u64 = 1;
    printf("add: %d\n", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &e));
    TRY("add again", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &e));
    show("empty, 10ms", wait1(ep, 10, ev), ev);
    write(p[1], "ab", 2);
    show("level 1", wait1(ep, 0, ev), ev);
    show("level 2", wait1(ep, 0, ev), ev);
    char buf[8];
    read(p[0], buf, 2);
    show("drained", wait1(ep, 0, ev), ev);

    /* edge triggered */
    e.events = EPOLLIN | EPOLLET;
    e.data.u64 = 2;
    printf("mod et: %d\n", epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &e));
    write(p[1], "c", 1);
    show("edge 1", wait1(ep, 0, ev), ev);
    show("edge 2", wait1(ep, 0, ev), ev);
    write(p[1], "d", 1);
    show("edge 3", wait1(ep, 0, ev), ev);
    read(p[0], buf, 2);

    /* one shot */
    e.events = EPOLLIN | EPOLLONESHOT;
    e.data.u64 = 3;
    epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &e);
    write(p[1], "e", 1);
    show("oneshot 1", wait1(ep, 0, ev), ev);
    show("oneshot 2", wait1(ep, 0, ev), ev);
    epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &e);
    show("rearmed", wait1(ep, 0, ev), ev);
    read(p[0], buf, 1);

    /* write end: EPOLLOUT, then EPOLLERR when the reader goes */
    int q[2];
    pipe(q);
    e.events = EPOLLOUT;
    e.data.u64 = 4;
    epoll_ctl(ep, EPOLL_CTL_ADD, q[1], &e);
    epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL);
    show("writable", wait1(ep, 0, ev), ev);
    close(q[0]);
    show("reader gone", wait1(ep, 0, ev), ev);
    /* closing the only fd of the description removes it */
    close(q[1]);
    show("after close", wait1(ep, 0, ev), ev);
    TRY("del closed", epoll_ctl(ep, EPOLL_CTL_DEL, q[1], NULL));

    /* a dup keeps the registration alive */
    int r[2];
    pipe(r);
    e.events = EPOLLIN;
    e.data.u64 = 5;
    epoll_ctl(ep, EPOLL_CTL_ADD, r[0], &e);
    int d = dup(r[0]);
    close(r[0]);
    write(r[1], "x", 1);
    show("via dup", wait1(ep, 0, ev), ev);
    read(d, buf, 1);

    /* hang-up */
    close(r[1]);
    show("hup", wait1(ep, 0, ev), ev);
    close(d);

    /* eventfd in epoll, nested epoll */
    int efd = eventfd(0, EFD_NONBLOCK);
    int inner = epoll_create(1);
    e.events = EPOLLIN;
    e.data.u64 = 6;
    epoll_ctl(inner, EPOLL_CTL_ADD, efd, &e);
    e.data.u64 = 7;
    printf("add inner: %d\n", epoll_ctl(ep, EPOLL_CTL_ADD, inner, &e));
    TRY("loop", epoll_ctl(inner, EPOLL_CTL_ADD, ep, &e));
    TRY("self", epoll_ctl(ep, EPOLL_CTL_ADD, ep, &e));
    show("nested idle", wait1(ep, 0, ev), ev);
    uint64_t one = 1;
    write(efd, &one, 8);
    show("nested", wait1(ep, 0, ev), ev);
    show("inner", wait1(inner, 0, ev), ev);
    struct pollfd pf = {ep, POLLIN, 0};
    int n;
    n = poll(&pf, 1, 0);
    printf("poll epoll: %d revents=%#x\n", n, pf.revents);
    uint64_t v;
    read(efd, &v, 8);
    show("nested drained", wait1(ep, 0, ev), ev);

    /* blocking wait woken by another process */
    int s[2];
    pipe(s);
    e.events = EPOLLIN;
    e.data.u64 = 8;
    epoll_ctl(ep, EPOLL_CTL_ADD, s[0], &e);
    pid_t c = fork();
    if (c == 0) { usleep(50000); write(s[1], "z", 1); _exit(0); }
    show("woken", epoll_wait(ep, ev, 8, 5000), ev);
    waitpid(c, 0, 0);
    read(s[0], buf, 1);

    /* EINTR */
    signal(SIGUSR1, on_usr1);
    pid_t parent = getpid();
    c = fork();
    if (c == 0) { usleep(50000); kill(parent, SIGUSR1); _exit(0); }
    errno = 0;
    n = epoll_wait(ep, ev, 8, 5000);
    printf("interrupted: %d eintr=%d\n", n, errno == EINTR);
    waitpid(c, 0, 0);

    /* epoll_pwait with SIGUSR1 blocked: not interrupted, times out */
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    c = fork();
    if (c == 0) { usleep(20000); kill(parent, SIGUSR1); _exit(0); }
    n = epoll_pwait(ep, ev, 8, 200, &block);
    printf("pwait blocked: %d\n", n);
    sigset_t pend;
    sigpending(&pend);
    printf("pending during pwait: %d\n", sigismember(&pend, SIGUSR1));
    waitpid(c, 0, 0);

    /* argument errors */
    TRY("maxevents 0", epoll_wait(ep, ev, 0, 0));
    TRY("not epoll", epoll_wait(s[0], ev, 1, 0));
    TRY("create1 bad flags", epoll_create1(1));
    TRY("create 0", epoll_create(0));
    int f = open("data/hello.txt", O_RDONLY);
    TRY("regular file", epoll_ctl(ep, EPOLL_CTL_ADD, f, &e));
    TRY("mod missing", epoll_ctl(ep, EPOLL_CTL_MOD, s[1], &e));
    e.events = EPOLLIN | EPOLLEXCLUSIVE;
    printf("exclusive add: %d\n", epoll_ctl(ep, EPOLL_CTL_ADD, s[1], &e));
    TRY("exclusive mod", epoll_ctl(ep, EPOLL_CTL_MOD, s[1], &e));
    TRY("bad op", epoll_ctl(ep, 9, s[1], &e));
    /* pwait2 with a timespec */
    struct timespec ts = {0, 10 * 1000 * 1000};
    epoll_ctl(ep, EPOLL_CTL_DEL, s[1], NULL);
    n = syscall(441, ep, ev, 8, &ts, NULL, 8);
    printf("pwait2 timeout: %d\n", n);
    return 0;
}
