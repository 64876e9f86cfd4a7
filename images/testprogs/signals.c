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
static void clobber(int s) { (void)s; __asm__ volatile("pxor %%xmm8, %%xmm8" ::: "xmm8"); }
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
    /* The interrupted code's SSE state survives a handler that clobbers it. */
    signal(SIGUSR2, clobber);
    unsigned long in = 0x4242424242424242UL, out = 0;
    __asm__ volatile("movq %1, %%xmm8\n\t"
                     "mov $39, %%eax\n\tsyscall\n\t"
                     "mov %%eax, %%edi\n\tmov $12, %%esi\n\tmov $62, %%eax\n\tsyscall\n\t"
                     "movq %%xmm8, %0"
                     : "=r"(out) : "r"(in) : "rax", "rdi", "rsi", "rcx", "r11", "xmm8", "memory");
    printf("sse preserved across handler: %d\n", out == in);
    pid_t p = fork();
    if (p == 0) { pause(); _exit(0); }
    kill(p, SIGTERM);
    int st;
    waitpid(p, &st, 0);
    printf("child killed by %d\n", WIFSIGNALED(st) ? WTERMSIG(st) : -1);
    return 0;
}
