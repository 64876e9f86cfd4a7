/* siginfo: what SA_SIGINFO handlers, sigwaitinfo and SIGCHLD report:
 * kill/sigqueue/tgkill sender and code, queued real-time signals, standard
 * signals that coalesce, and child exit details. Deterministic output. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int seen_code, seen_pid_is_me, seen_value, rt_count;

static void handler(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    seen_code = si->si_code;
    seen_pid_is_me = si->si_pid == getpid();
    seen_value = si->si_value.sival_int;
    if (sig == SIGRTMIN) rt_count++;
}

static const char *code_name(int c) {
    switch (c) {
    case SI_USER: return "SI_USER";
    case SI_QUEUE: return "SI_QUEUE";
    case SI_TKILL: return "SI_TKILL";
    case SI_KERNEL: return "SI_KERNEL";
    case CLD_EXITED: return "CLD_EXITED";
    case CLD_KILLED: return "CLD_KILLED";
    default: return "other";
    }
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGRTMIN, &sa, NULL);

    kill(getpid(), SIGUSR1);
    printf("kill: %s from me %d\n", code_name(seen_code), seen_pid_is_me);
    union sigval v = {.sival_int = 1234};
    sigqueue(getpid(), SIGUSR1, v);
    printf("sigqueue: %s from me %d value %d\n", code_name(seen_code), seen_pid_is_me, seen_value);
    syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGUSR1);
    printf("tgkill: %s from me %d\n", code_name(seen_code), seen_pid_is_me);

    /* Blocked: three real-time signals queue, three SIGUSR1 coalesce. */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN);
    sigaddset(&set, SIGUSR2);
    sigprocmask(SIG_BLOCK, &set, &old);
    for (int i = 0; i < 3; i++) {
        v.sival_int = 10 + i;
        sigqueue(getpid(), SIGRTMIN, v);
        kill(getpid(), SIGUSR2);
    }
    siginfo_t si;
    for (int i = 0; i < 3; i++) {
        int s = sigwaitinfo(&set, &si);
        printf("sigwaitinfo: %s value %d code %s\n", s == SIGRTMIN ? "SIGRTMIN" : "SIGUSR2",
               s == SIGRTMIN ? si.si_value.sival_int : 0, code_name(si.si_code));
    }
    sigset_t pend;
    sigpending(&pend);
    printf("still pending: RTMIN %d USR2 %d\n", sigismember(&pend, SIGRTMIN), sigismember(&pend, SIGUSR2));
    sigprocmask(SIG_SETMASK, &old, NULL);

    /* SIGCHLD details through waitid and sigwaitinfo. */
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    pid_t c = fork();
    if (c == 0) _exit(7);
    int s = sigwaitinfo(&set, &si);
    printf("SIGCHLD %d: %s status %d from child %d\n", s == SIGCHLD, code_name(si.si_code), si.si_status,
           si.si_pid == c);
    waitpid(c, NULL, 0);
    c = fork();
    if (c == 0) { pause(); _exit(0); }
    kill(c, SIGTERM);
    s = sigwaitinfo(&set, &si);
    printf("SIGCHLD %d: %s status %d from child %d\n", s == SIGCHLD, code_name(si.si_code), si.si_status,
           si.si_pid == c);
    siginfo_t wi;
    memset(&wi, 0, sizeof wi);
    waitid(P_PID, c, &wi, WEXITED);
    printf("waitid: %s status %d\n", code_name(wi.si_code), wi.si_status);
    return 0;
}
