/* prctl and capabilities: PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER,
 * PR_SET_NO_NEW_PRIVS, capget/capset and what a uid change does to the
 * capability sets; execveat. Runs as root; prints booleans only. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int capget_(struct __user_cap_data_struct d[2]) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    return syscall(SYS_capget, &h, d);
}
static int capset_(struct __user_cap_data_struct d[2]) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    return syscall(SYS_capset, &h, d);
}

int main(int argc, char **argv) {
    if (argc > 1) { printf("execveat ran me with %s\n", argv[1]); return 0; }
    setvbuf(stdout, NULL, _IONBF, 0);
    int nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    printf("no_new_privs %d -> %d\n", nnp, prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));

    /* Subreaper: a grandchild whose parent exits comes to us. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    int fds[2];
    pipe(fds);
    pid_t mid = fork();
    if (mid == 0) {
        pid_t gc = fork();
        if (gc == 0) {
            close(fds[0]);
            /* Parent death signal: SIGUSR1 is default-terminate. */
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            int sig = 0;
            prctl(PR_GET_PDEATHSIG, &sig);
            write(fds[1], &sig, sizeof sig);
            pause();
            _exit(0);
        }
        for (;;) pause();
    }
    close(fds[1]);
    int sig = 0;
    read(fds[0], &sig, sizeof sig); /* the grandchild is set up */
    kill(mid, SIGKILL);
    int status;
    waitpid(mid, &status, 0);
    printf("middle killed %d; grandchild's pdeathsig was %d\n", WIFSIGNALED(status), sig);
    pid_t got = wait(&status);
    printf("orphan reaped by the subreaper: %s, killed by SIGTERM: %s\n", got > 0 ? "yes" : "no",
           WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM ? "yes" : "no");

    struct __user_cap_data_struct d[2];
    capget_(d);
    printf("root: CAP_SETUID effective %d permitted %d\n", !!(d[0].effective & (1 << CAP_SETUID)),
           !!(d[0].permitted & (1 << CAP_SETUID)));
    pid_t c = fork();
    if (c == 0) {
        d[0].effective &= ~(1u << CAP_SETUID);
        printf("capset drop CAP_SETUID from effective: %d\n", capset_(d));
        printf("setuid(1000) without it: %d\n", setuid(1000));
        d[0].effective |= 1u << CAP_SETUID;
        printf("capset raise it again (still permitted): %d\n", capset_(d));
        d[0].permitted &= ~(1u << CAP_SETUID);
        d[0].effective &= ~(1u << CAP_SETUID);
        capset_(d);
        d[0].permitted |= 1u << CAP_SETUID;
        printf("capset regain a dropped permitted cap: %d\n", capset_(d));
        _exit(0);
    }
    waitpid(c, NULL, 0);
    c = fork();
    if (c == 0) {
        setresuid(1000, 1000, 1000);
        capget_(d);
        printf("after setresuid(1000): effective %d permitted %d\n", d[0].effective != 0, d[0].permitted != 0);
        _exit(0);
    }
    waitpid(c, NULL, 0);
    c = fork();
    if (c == 0) {
        seteuid(1000);
        capget_(d);
        printf("after seteuid(1000): effective %d permitted %d\n", d[0].effective != 0, d[0].permitted != 0);
        seteuid(0);
        capget_(d);
        printf("back to euid 0: effective %d\n", d[0].effective != 0);
        _exit(0);
    }
    waitpid(c, NULL, 0);

    /* This program, by directory fd and by its own fd (the native run
     * starts it from elsewhere than /bin). */
    char self[4096];
    strncpy(self, argv[0], sizeof self - 1);
    char *slash = strrchr(self, '/');
    *slash = 0;
    int dir = open(self[0] ? self : "/", O_RDONLY | O_DIRECTORY);
    c = fork();
    if (c == 0) {
        char *args[] = {"prctlcaps", "dirfd", NULL};
        char *env[] = {NULL};
        syscall(SYS_execveat, dir, "prctlcaps", args, env, 0);
        _exit(99);
    }
    waitpid(c, NULL, 0);
    c = fork();
    if (c == 0) {
        int fd = open(argv[0], O_RDONLY);
        char *args[] = {"prctlcaps", "empty-path", NULL};
        char *env[] = {NULL};
        syscall(SYS_execveat, fd, "", args, env, AT_EMPTY_PATH);
        _exit(99);
    }
    waitpid(c, NULL, 0);
    return 0;
}
