/* POSIX record locks go when the process closes ANY descriptor of the
 * file, by every path that closes one: close, close_range, dup2/dup3
 * replacing it, execve closing a close-on-exec descriptor, exit. OFD
 * locks go only with the last reference to their open file description.
 * A forked child observes with F_GETLK. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static char path[64];
static const char *self_path;

static int lk(int fd, int cmd, short type) {
    struct flock f = {.l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
    return fcntl(fd, cmd, &f);
}

/* What a forked child sees of the lock over [0,10): "locked" or "unlocked". */
static void observe(const char *what, int ofd) {
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        int fd = open(path, O_RDWR);
        struct flock f = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
        if (fcntl(fd, ofd ? F_OFD_GETLK : F_GETLK, &f) < 0) {
            printf("%s: getlk %s\n", what, strerror(errno));
        } else {
            printf("%s: %s\n", what, f.l_type == F_UNLCK ? "unlocked" : "locked");
        }
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
}

static int openf(int flags) { return open(path, O_RDWR | flags); }

static void by_close_range(void) {
    int fd = openf(0);
    int other = openf(0);
    lk(fd, F_SETLK, F_WRLCK);
    observe("before close_range", 0);
    syscall(SYS_close_range, other, other, 0);
    observe("after close_range of another fd", 0);
    lk(fd, F_SETLK, F_WRLCK);
    other = openf(0);
    syscall(SYS_close_range, other, other, 4 /* CLOSE_RANGE_CLOEXEC */);
    observe("after close_range CLOEXEC (nothing closed)", 0);
    close(other);
    close(fd);
}

static void by_dup(void) {
    int fd = openf(0);
    int other = openf(0);
    int unrelated = open("/dev/null", O_RDONLY);
    lk(fd, F_SETLK, F_WRLCK);
    dup2(unrelated, other);
    observe("after dup2 over another fd", 0);
    lk(fd, F_SETLK, F_WRLCK);
    other = openf(0);
    dup3(unrelated, other, O_CLOEXEC);
    observe("after dup3 over another fd", 0);
    lk(fd, F_SETLK, F_WRLCK);
    dup2(fd, fd);
    observe("after dup2 onto itself", 0);
    close(fd);
    close(other);
    close(unrelated);
}

/* The child takes the lock through fd, keeps `cloexec` (a close-on-exec
 * descriptor of the file, or -1) and execs this program to hold. */
static void by_exec(int with_cloexec) {
    int p[2];
    pipe(p);
    pid_t c = fork();
    if (c == 0) {
        int fd = openf(0);
        if (with_cloexec) openf(O_CLOEXEC);
        lk(fd, F_SETLK, F_WRLCK);
        char arg[16];
        snprintf(arg, sizeof arg, "%d", p[1]);
        close(p[0]);
        execl(self_path, "lockclose", "hold", arg, (char *)0);
        _exit(127);
    }
    close(p[1]);
    char ch;
    read(p[0], &ch, 1);
    observe(with_cloexec ? "after exec closing a cloexec fd" : "after exec without cloexec fds", 0);
    kill(c, SIGKILL);
    int st;
    waitpid(c, &st, 0);
    close(p[0]);
    observe("after the holder was killed", 0);
}

static void ofd(void) {
    int fd = openf(0);
    lk(fd, F_OFD_SETLK, F_WRLCK);
    int other = openf(0);
    close(other);
    observe("ofd after closing another fd", 1);
    int d = dup(fd);
    close(fd);
    observe("ofd after closing one of two dups", 1);
    pid_t c = fork();
    if (c == 0) {
        close(d);
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    observe("ofd after a child closed its copy", 1);
    int e = dup(d);
    dup2(e, 100);
    close(e);
    syscall(SYS_close_range, d, d, 0);
    observe("ofd still held through fd 100", 1);
    close(100);
    observe("ofd after the last close", 1);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "hold") == 0) {
        write(atoi(argv[2]), "r", 1);
        pause();
        return 0;
    }
    self_path = argv[0];
    setvbuf(stdout, 0, _IONBF, 0);
    snprintf(path, sizeof path, "/tmp/lockclose-%d", getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    close(fd);
    by_close_range();
    by_dup();
    by_exec(1);
    by_exec(0);
    ofd();
    unlink(path);
    return 0;
}
