/* Job control: stop and continue a child, and the wait statuses. */
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    /* The child gets a process group of its own, whose member has a
     * parent in another group of the session: never an orphaned group,
     * where Linux would discard SIGTSTP (a test run in a background job
     * would hang natively). */
    pid_t c = fork();
    if (c == 0) {
        setpgid(0, 0);
        for (;;) pause();
    }
    setpgid(c, c);
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
