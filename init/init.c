/*
 * sandboxd's mini-init: PID 1 of each container inside the sentry.
 *
 *   sandboxd-init PATH ARGV0 [ARGS...]
 *
 * Starts PATH with argv ARGV0 ARGS..., forwards SIGTERM, SIGINT, SIGHUP,
 * SIGQUIT, SIGUSR1 and SIGUSR2 to it, reaps every child (orphans are
 * reparented to PID 1), and exits with the command's status: its exit code,
 * (on a terminal the command is a session leader with it as its
 * controlling terminal)
 * or 128+N when signal N killed it. If PATH cannot be executed the child
 * exits 127 (not found) or 126 (cannot run).
 *
 * Freestanding: no libc, raw x86-64 syscalls, a few KB.
 */

typedef unsigned long u64;
typedef long i64;

#define SYS_rt_sigaction 13
#define SYS_rt_sigreturn 15
#define SYS_fork 57
#define SYS_execve 59
#define SYS_exit_group 231
#define SYS_wait4 61
#define SYS_kill 62
#define SYS_write 1
#define SYS_ioctl 16
#define SYS_setsid 112

#define TCGETS 0x5401
#define TIOCSCTTY 0x540e

#define SA_RESTORER 0x04000000
#define EINTR 4
#define ENOENT 2
#define ECHILD 10

static i64 sys6(i64 n, i64 a, i64 b, i64 c, i64 d) {
    i64 ret;
    register i64 r10 __asm__("r10") = d;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
    return ret;
}

static volatile i64 child;

struct kernel_sigaction {
    void (*handler)(int);
    u64 flags;
    void (*restorer)(void);
    u64 mask;
};

void init_restorer(void);
__asm__(".text\n.globl init_restorer\ninit_restorer:\n\tmov $15, %eax\n\tsyscall\n\thlt\n");

static void forward(int sig) {
    if (child > 0)
        sys6(SYS_kill, child, sig, 0, 0);
}

static u64 len(const char *s) {
    u64 n = 0;
    while (s[n])
        n++;
    return n;
}

static void say(const char *a, const char *b) {
    sys6(SYS_write, 2, (i64)a, len(a), 0);
    sys6(SYS_write, 2, (i64)b, len(b), 0);
    sys6(SYS_write, 2, (i64)"\n", 1, 0);
}

__attribute__((noreturn)) static void quit(int code) {
    for (;;)
        sys6(SYS_exit_group, code, 0, 0, 0);
}

__attribute__((noreturn, used)) void init_main(i64 *sp) {
    i64 argc = sp[0];
    char **argv = (char **)(sp + 1);
    char **envp = argv + argc + 1;
    if (argc < 3) {
        say("sandboxd-init: usage: sandboxd-init PATH ARGV0 [ARGS...]", "");
        quit(125);
    }
    static const int forwarded[] = {15, 2, 1, 3, 10, 12};
    for (unsigned i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) {
        struct kernel_sigaction sa = {forward, SA_RESTORER, init_restorer, 0};
        sys6(SYS_rt_sigaction, forwarded[i], (i64)&sa, 0, 8);
    }
    i64 pid = sys6(SYS_fork, 0, 0, 0, 0);
    if (pid == 0) {
        /* On a terminal (a `tty: true` container), the command leads a
         * session of its own with the terminal as its controlling one. */
        char termios[64];
        if (sys6(SYS_ioctl, 0, TCGETS, (i64)termios, 0) == 0) {
            sys6(SYS_setsid, 0, 0, 0, 0);
            sys6(SYS_ioctl, 0, TIOCSCTTY, 0, 0);
        }
        /* The command starts with default dispositions. */
        for (unsigned i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) {
            struct kernel_sigaction dfl = {0, SA_RESTORER, init_restorer, 0};
            sys6(SYS_rt_sigaction, forwarded[i], (i64)&dfl, 0, 8);
        }
        i64 err = sys6(SYS_execve, (i64)argv[1], (i64)(argv + 2), (i64)envp, 0);
        say("sandboxd-init: cannot execute ", argv[1]);
        quit(err == -ENOENT ? 127 : 126);
    }
    if (pid < 0) {
        say("sandboxd-init: fork failed", "");
        quit(125);
    }
    child = pid;
    for (;;) {
        int status = 0;
        i64 got = sys6(SYS_wait4, -1, (i64)&status, 0, 0);
        if (got == -EINTR)
            continue;
        if (got == -ECHILD)
            quit(125);
        if (got == pid) {
            int sig = status & 0x7f;
            quit(sig ? 128 + sig : (status >> 8) & 0xff);
        }
    }
}

__asm__(".text\n.globl _start\n_start:\n\txor %rbp, %rbp\n\tmov %rsp, %rdi\n\tand $-16, %rsp\n\tcall init_main\n\thlt\n");
