/* Processes sharing memory with their parent: a vfork child's writes are
 * the parent's; posix_spawn reports a missing program's error (glibc's
 * child writes it into shared memory); clone(CLONE_VM) without a thread;
 * CLONE_FILES shares the descriptor table. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
static volatile int shared_value;
static int child_fd = -1;

static int vm_child(void *arg) {
    (void)arg;
    shared_value = 42;
    child_fd = open("/", O_RDONLY);
    return 7;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    pid_t p = vfork();
    if (p == 0) {
        shared_value = 1;
        _exit(0);
    }
    waitpid(p, NULL, 0);
    printf("vfork child's write seen by the parent: %d\n", shared_value);

    pid_t pid;
    char *argv[] = {"nope", NULL};
    int r = posix_spawn(&pid, "/no/such/program", NULL, NULL, argv, environ);
    printf("posix_spawn of a missing program: %s\n", r == ENOENT ? "ENOENT" : strerror(r));
    char *argv2[] = {"true", NULL};
    r = posix_spawn(&pid, "/bin/true", NULL, NULL, argv2, environ);
    int status = -1;
    waitpid(pid, &status, 0);
    printf("posix_spawn /bin/true: %d, exit %d\n", r, WEXITSTATUS(status));

    char *stack = malloc(1 << 16);
    pid = clone(vm_child, stack + (1 << 16), CLONE_VM | CLONE_FILES | SIGCHLD, NULL);
    waitpid(pid, &status, 0);
    printf("clone(CLONE_VM|CLONE_FILES): exit %d, value %d, fd shared %s\n", WEXITSTATUS(status),
           shared_value, child_fd >= 0 && fcntl(child_fd, F_GETFD) >= 0 ? "yes" : "no");
    return 0;
}
