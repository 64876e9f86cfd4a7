/* kill(2) permissions: an unprivileged process may not signal another
 * user's process (kill, tgkill, probes with 0), except SIGCONT within its
 * session; kill(-1, 0) reports success; root may. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
static const char *err(long r) { return r < 0 ? strerrorname_np(errno) : "ok"; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    pid_t root_child = fork();
    if (root_child == 0) { for (;;) pause(); }
    int p[2]; pipe(p);
    pid_t c = fork();
    if (c == 0) {
        if (setresgid(1000, 1000, 1000) || setresuid(1000, 1000, 1000)) { perror("setuid"); _exit(1); }
        printf("kill root process: %s\n", err(kill(root_child, SIGKILL)));
        printf("kill 0 probe: %s\n", err(kill(root_child, 0)));
        printf("tgkill: %s\n", err(syscall(SYS_tgkill, root_child, root_child, SIGKILL)));
        printf("SIGCONT same session: %s\n", err(kill(root_child, SIGCONT)));
        printf("kill -1 probe: %s\n", err(kill(-1, 0)));
        printf("self: %s\n", err(kill(getpid(), 0)));
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    printf("root child alive: %d\n", kill(root_child, 0) == 0);
    kill(root_child, SIGKILL);
    waitpid(root_child, &st, 0);
    printf("killed by root: %d\n", WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    return 0;
}
