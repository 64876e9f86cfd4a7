/* Handlers, masks, SIGCHLD, and a SIGSEGV handler that longjmps out. */
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
static volatile int got;
static sigjmp_buf env;
static void on_usr1(int s) { got = s; }
static void on_segv(int s, siginfo_t *si, void *uc) { (void)uc; got = s; siglongjmp(env, si->si_addr == (void *)8 ? 1 : 2); }
int main(void) {
    signal(SIGUSR1, on_usr1);
    raise(SIGUSR1);
    printf("handler ran: %d\n", got == SIGUSR1);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, 0);
    got = 0;
    kill(getpid(), SIGUSR1);
    sigset_t pend;
    sigpending(&pend);
    printf("blocked then pending: %d %d\n", got, sigismember(&pend, SIGUSR1));
    sigprocmask(SIG_UNBLOCK, &set, 0);
    printf("delivered on unblock: %d\n", got == SIGUSR1);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, 0);
    int r = sigsetjmp(env, 1);
    if (r == 0) *(volatile int *)8 = 1;
    printf("segv handler: %d addr ok: %d\n", got == SIGSEGV, r == 1);
    pid_t p = fork();
    if (p == 0) { pause(); _exit(0); }
    kill(p, SIGTERM);
    int st;
    waitpid(p, &st, 0);
    printf("child killed by %d\n", WIFSIGNALED(st) ? WTERMSIG(st) : -1);
    return 0;
}
