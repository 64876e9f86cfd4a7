/* Job control: stop and continue a child, and the wait statuses. */
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    pid_t c = fork();
    if (c == 0) { for (;;) pause(); }
    int st;
    kill(c, SIGSTOP);
    pid_t r = waitpid(c, &st, WUNTRACED);
    printf("stopped: %d by %d\n", r == c && WIFSTOPPED(st), WIFSTOPPED(st) ? WSTOPSIG(st) : -1);
    kill(c, SIGCONT);
    r = waitpid(c, &st, WCONTINUED);
    printf("continued: %d\n", r == c && WIFCONTINUED(st));
    kill(c, SIGTSTP);
    siginfo_t si = {0};
    waitid(P_PID, c, &si, WSTOPPED);
    printf("waitid stopped: code=%d status=%d\n", si.si_code, si.si_status);
    kill(c, SIGCONT);
    printf("nothing else to report: %d\n", waitpid(c, &st, WNOHANG | WUNTRACED));
    kill(c, SIGKILL);
    r = waitpid(c, &st, 0);
    printf("killed: %d sig=%d\n", r == c && WIFSIGNALED(st), WTERMSIG(st));
    return 0;
}
