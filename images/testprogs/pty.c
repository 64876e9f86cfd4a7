/* Pseudo-terminals: posix_openpt/grantpt/unlockpt/ptsname, a child that
 * makes the slave its controlling terminal, canonical input with echo and
 * line editing, ^C as SIGINT to the foreground group, TIOCSWINSZ as
 * SIGWINCH, raw mode with VMIN/VTIME, SIGTTIN for a background reader,
 * EIO on the master once the slave is closed, and the hangup of the
 * slave when the master closes. The parent writes the master and prints
 * what it reads there; the child prints what it reads on the slave. The
 * two take turns through a pipe, so the output is deterministic. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static int sync_w, sync_r, ack_w, ack_r;
static volatile sig_atomic_t got_int, got_winch, got_hup;

static void on_sig(int s) {
    if (s == SIGINT) got_int = 1;
    if (s == SIGWINCH) got_winch = 1;
    if (s == SIGHUP) got_hup = 1;
}

/* The child says it reached a step (and printed what it had to). */
static void step(void) {
    fflush(stdout);
    char c = 's';
    if (write(sync_w, &c, 1) != 1) _exit(90);
}

static void wait_step(void) {
    char c;
    if (read(sync_r, &c, 1) != 1) { printf("parent: child gone\n"); exit(1); }
}

/* The parent lets the child go on once it printed its part. */
static void ack(void) {
    char c = 'a';
    if (write(ack_w, &c, 1) != 1) exit(1);
}

static void wait_ack(void) {
    char c;
    if (read(ack_r, &c, 1) != 1) _exit(91);
}

static void show(const char *who, const char *buf, int n) {
    printf("%s '", who);
    for (int i = 0; i < n; i++) {
        unsigned char c = buf[i];
        if (c >= 32 && c < 127 && c != '\\') putchar(c);
        else printf("\\x%02x", c);
    }
    printf("' (%d)\n", n);
}

/* Reads the master until `want` bytes came or 2 s passed. */
static int drain(int m, char *buf, int want) {
    int got = 0;
    while (got < want) {
        struct pollfd p = {m, POLLIN, 0};
        if (poll(&p, 1, 2000) <= 0) break;
        int n = read(m, buf + got, want - got);
        if (n <= 0) break;
        got += n;
    }
    return got;
}

static void put(int m, const char *s) {
    if (write(m, s, strlen(s)) != (ssize_t)strlen(s)) printf("parent: short write\n");
}

static void child(int m, const char *name) {
    close(m);
    setsid();
    int s = open(name, O_RDWR | O_NOCTTY);
    if (s < 0) { printf("child: open slave: %s\n", strerror(errno)); _exit(1); }
    int pg = tcgetpgrp(s);
    printf("child: tcgetpgrp before TIOCSCTTY: %d %s\n", pg, strerror(errno));
    printf("child: TIOCSCTTY %d\n", ioctl(s, TIOCSCTTY, 0));
    printf("child: sid is mine %d, pgrp is mine %d\n", tcgetsid(s) == getpid(), tcgetpgrp(s) == getpid());
    char *tn = ttyname(s);
    printf("child: ttyname matches ptsname %d\n", tn && strcmp(tn, name) == 0);
    struct stat a, b;
    fstat(s, &a);
    stat(name, &b);
    printf("child: chr %d same rdev %d same ino %d\n", S_ISCHR(a.st_mode), a.st_rdev == b.st_rdev, a.st_ino == b.st_ino);
    int t = open("/dev/tty", O_RDWR);
    printf("child: /dev/tty opens %d isatty %d\n", t >= 0, isatty(t));
    close(t);
    dup2(s, 0);
    struct termios tio;
    tcgetattr(s, &tio);
    printf("child: default iflag %o oflag %o lflag %o vmin %d\n", tio.c_iflag, tio.c_oflag, tio.c_lflag, tio.c_cc[VMIN]);

    /* 1: a canonical line with editing. */
    step();
    char buf[256];
    int n = read(s, buf, sizeof buf);
    show("child: line", buf, n);
    n = read(s, buf, sizeof buf);
    show("child: after ^D", buf, n);
    if (write(s, "out\tx\n", 6) != 6) printf("child: short write\n");
    step();

    /* 2: ^C interrupts a read with SIGINT. */
    struct sigaction sa = {0};
    sa.sa_handler = on_sig;
    sigaction(SIGINT, &sa, 0);
    sigaction(SIGWINCH, &sa, 0);
    step();
    /* The read ends with EINTR, unless ^C came before it began. */
    n = read(s, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
        n = read(s, buf, sizeof buf);
    printf("child: SIGINT %d\n", got_int);
    show("child: the line after ^C", buf, n);
    int avail = -1;
    ioctl(s, FIONREAD, &avail);
    printf("child: FIONREAD after ^C %d\n", avail);
    step();

    /* 3: a window size change is SIGWINCH (blocked until sigsuspend, so
     * it cannot come between the check and the wait). */
    sigset_t none, winch;
    sigemptyset(&none);
    sigemptyset(&winch);
    sigaddset(&winch, SIGWINCH);
    sigprocmask(SIG_BLOCK, &winch, 0);
    step();
    while (!got_winch) sigsuspend(&none);
    sigprocmask(SIG_UNBLOCK, &winch, 0);
    struct winsize ws;
    ioctl(s, TIOCGWINSZ, &ws);
    printf("child: SIGWINCH rows %d cols %d\n", ws.ws_row, ws.ws_col);
    step();

    /* 4: raw mode. */
    cfmakeraw(&tio);
    tio.c_cc[VMIN] = 3;
    tio.c_cc[VTIME] = 0;
    tcsetattr(s, TCSANOW, &tio);
    step();
    n = read(s, buf, sizeof buf);
    show("child: raw", buf, n);
    if (write(s, "a\nb", 3) != 3) printf("child: short write\n");
    tio.c_cc[VMIN] = 0;
    tio.c_cc[VTIME] = 1;
    tcsetattr(s, TCSANOW, &tio);
    n = read(s, buf, sizeof buf);
    printf("child: VTIME read with nothing typed %d\n", n);
    step();
    wait_ack();

    /* 5: a background reader gets SIGTTIN. */
    pid_t bg = fork();
    if (bg == 0) {
        setpgid(0, 0);
        char c;
        int r = read(s, &c, 1);
        _exit(r < 0 ? 2 : 3);
    }
    setpgid(bg, bg);
    int st;
    waitpid(bg, &st, WUNTRACED);
    printf("child: background read stopped %d by %s\n", WIFSTOPPED(st), WIFSTOPPED(st) ? strsignal(WSTOPSIG(st)) : "-");
    kill(bg, SIGKILL);
    waitpid(bg, &st, 0);
    step();
    _exit(0);
}

/* A second pty whose master the parent closes: the slave hangs up. */
static void hangup_test(void) {
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    grantpt(m);
    unlockpt(m);
    char name[64];
    ptsname_r(m, name, sizeof name);
    pid_t c = fork();
    if (c == 0) {
        close(m);
        setsid();
        int s = open(name, O_RDWR);
        struct sigaction sa = {0};
        sa.sa_handler = on_sig;
        sigaction(SIGHUP, &sa, 0);
        sigset_t none, hup;
        sigemptyset(&none);
        sigemptyset(&hup);
        sigaddset(&hup, SIGHUP);
        sigprocmask(SIG_BLOCK, &hup, 0);
        printf("hangup child: open made it my terminal %d\n", tcgetsid(s) == getpid());
        step();
        while (!got_hup) sigsuspend(&none);
        char b;
        int r = read(s, &b, 1);
        int w = write(s, "x", 1);
        printf("hangup child: SIGHUP, read %d, write %d %s\n", r, w, strerror(errno));
        printf("hangup child: /dev/tty now %d\n", open("/dev/tty", O_RDWR) >= 0);
        fflush(stdout);
        _exit(0);
    }
    wait_step();
    close(m);
    int st;
    waitpid(c, &st, 0);
    printf("parent: hangup child exit %d\n", WEXITSTATUS(st));
}

/* O_NONBLOCK on both ends, and readiness through poll and epoll. */
static void readiness_test(void) {
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK);
    grantpt(m);
    unlockpt(m);
    int s = open(ptsname(m), O_RDWR | O_NOCTTY | O_NONBLOCK);
    char b[16];
    int n = read(m, b, sizeof b);
    printf("nonblocking master read %d %s\n", n, strerror(errno));
    n = read(s, b, sizeof b);
    printf("nonblocking slave read %d %s\n", n, strerror(errno));
    int ep = epoll_create1(0);
    struct epoll_event ev = {EPOLLIN, {.fd = s}};
    epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
    struct epoll_event got[2];
    printf("epoll before a line %d\n", epoll_wait(ep, got, 2, 0));
    put(m, "ab");
    printf("epoll with half a line %d\n", epoll_wait(ep, got, 2, 50));
    put(m, "\n");
    n = epoll_wait(ep, got, 2, 1000);
    printf("epoll after the line %d in %d\n", n, n == 1 && (got[0].events & EPOLLIN));
    struct pollfd p[2] = {{m, POLLIN | POLLOUT, 0}, {s, POLLIN | POLLOUT, 0}};
    poll(p, 2, 0);
    printf("poll master in %d out %d, slave in %d out %d\n", !!(p[0].revents & POLLIN), !!(p[0].revents & POLLOUT),
           !!(p[1].revents & POLLIN), !!(p[1].revents & POLLOUT));
    close(s);
    p[0].events = POLLIN;
    while (read(m, b, sizeof b) > 0) {}
    poll(p, 1, 0);
    printf("poll master after the slave closed hup %d\n", !!(p[0].revents & POLLHUP));
    close(ep);
    close(m);
}

int main(void) {
    setvbuf(stdout, 0, _IOLBF, 0);
    int p[2];
    if (pipe(p)) return 1;
    sync_r = p[0];
    sync_w = p[1];
    if (pipe(p)) return 1;
    ack_r = p[0];
    ack_w = p[1];
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    printf("posix_openpt %d\n", m >= 0);
    printf("grantpt %d\n", grantpt(m));
    char *name = ptsname(m);
    printf("ptsname is /dev/pts/N %d\n", name && strncmp(name, "/dev/pts/", 9) == 0);
    int locked = open(name, O_RDWR | O_NOCTTY);
    printf("open before unlockpt %d %s\n", locked, strerror(errno));
    printf("unlockpt %d\n", unlockpt(m));
    unsigned ptn = 99;
    ioctl(m, TIOCGPTN, &ptn);
    char want[64];
    snprintf(want, sizeof want, "/dev/pts/%u", ptn);
    printf("TIOCGPTN names it %d\n", strcmp(want, name) == 0);
    char cname[64];
    strcpy(cname, name);

    pid_t c = fork();
    if (c == 0) child(m, cname);
    char buf[256];
    int n;

    wait_step();
    put(m, "helo\x7flo wor\x17world\r\x04");
    n = drain(m, buf, 29);
    wait_step();
    show("parent: echo", buf, n);
    n = drain(m, buf, 7);
    show("parent: output", buf, n);

    wait_step();
    put(m, "typed");
    n = drain(m, buf, 5);
    show("parent: echo", buf, n);
    put(m, "\x03");
    n = drain(m, buf, 2);
    put(m, "after\r");
    n += drain(m, buf + n, 7);
    wait_step();
    show("parent: echo of ^C and the next line", buf, n);

    wait_step();
    struct winsize ws = {24, 80, 0, 0};
    ioctl(m, TIOCSWINSZ, &ws);
    wait_step();

    wait_step();
    put(m, "\x03\r\x7f");
    wait_step();
    n = drain(m, buf, 3);
    show("parent: raw output", buf, n);
    ack();

    wait_step();
    int st;
    waitpid(c, &st, 0);
    printf("parent: child exit %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    n = read(m, buf, sizeof buf);
    printf("parent: master read after the slave closed %d %s\n", n, n < 0 ? strerror(errno) : "");
    close(m);
    hangup_test();
    readiness_test();
    return 0;
}
