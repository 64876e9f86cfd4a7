/* poll/select over pipes: timeouts, readiness, hang-up, EINTR. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <unistd.h>
static void on_usr1(int s) { (void)s; }
int main(void) {
    int p[2];
    pipe(p);
    struct pollfd fds = {p[0], POLLIN, 0};
    printf("empty pipe, 20ms: %d\n", poll(&fds, 1, 20));
    pid_t c = fork();
    if (c == 0) { usleep(50000); write(p[1], "x", 1); _exit(0); }
    int n = poll(&fds, 1, 5000);
    printf("after child write: %d revents=%#x\n", n, fds.revents);
    char ch;
    read(p[0], &ch, 1);
    waitpid(c, 0, 0);
    fd_set w;
    FD_ZERO(&w);
    FD_SET(p[1], &w);
    struct timeval tv = {1, 0};
    printf("select writable: %d isset=%d\n", select(p[1] + 1, 0, &w, 0, &tv), FD_ISSET(p[1], &w));
    close(p[1]);
    n = poll(&fds, 1, 1000);
    printf("writer closed: %d hup=%d\n", n, (fds.revents & POLLHUP) != 0);
    signal(SIGUSR1, on_usr1);
    int q[2];
    pipe(q);
    struct pollfd f2 = {q[0], POLLIN, 0};
    pid_t parent = getpid();
    c = fork();
    if (c == 0) { usleep(50000); kill(parent, SIGUSR1); _exit(0); }
    errno = 0;
    n = poll(&f2, 1, 5000);
    printf("interrupted: %d eintr=%d\n", n, errno == EINTR);
    waitpid(c, 0, 0);
    return 0;
}
