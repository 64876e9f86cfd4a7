/* sigtimedwait takes blocked signals; waitid reports and (WNOWAIT) peeks. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
int main(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, 0);
    struct timespec ten = {0, 10000000};
    errno = 0;
    int r = sigtimedwait(&set, 0, &ten);
    printf("nothing pending: %d eagain=%d\n", r, errno == EAGAIN);
    pid_t parent = getpid();
    pid_t c = fork();
    if (c == 0) { kill(parent, SIGUSR1); _exit(4); }
    siginfo_t si;
    r = sigwaitinfo(&set, &si);
    printf("took: %d signo=%d\n", r, si.si_signo);
    siginfo_t w = {0};
    r = waitid(P_PID, c, &w, WEXITED | WNOWAIT);
    printf("waitid nowait: %d pid_ok=%d code=%d status=%d\n", r, w.si_pid == c, w.si_code, w.si_status);
    int st;
    int reaped = waitpid(c, &st, 0) == c; /* before st is read */
    printf("still reapable: %d exit=%d\n", reaped, WEXITSTATUS(st));
    c = fork();
    if (c == 0) { pause(); _exit(0); }
    kill(c, SIGKILL);
    r = waitid(P_ALL, 0, &w, WEXITED);
    printf("killed child: %d code=%d status=%d\n", r, w.si_code, w.si_status);
    errno = 0;
    r = waitid(P_ALL, 0, &w, WEXITED | WNOHANG);
    printf("no children: %d echild=%d\n", r, errno == ECHILD);
    return 0;
}
