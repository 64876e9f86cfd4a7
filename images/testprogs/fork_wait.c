/* fork 200 children, reap them all, check their statuses. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    int ok = 0;
    for (int i = 0; i < 200; i++) {
        pid_t p = fork();
        if (p == 0) _exit(i % 256);
        int st;
        if (waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == i % 256) ok++;
    }
    printf("reaped %d/200\n", ok);
    int fds[2];
    pipe(fds);
    if (fork() == 0) { close(fds[0]); write(fds[1], "via pipe", 8); _exit(0); }
    close(fds[1]);
    char buf[16] = {0};
    read(fds[0], buf, sizeof buf - 1);
    wait(NULL);
    printf("child said: %s\n", buf);
    return 0;
}
