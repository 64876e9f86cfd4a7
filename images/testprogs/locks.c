/* flock(2) and fcntl(2) record locks (POSIX and OFD) between processes:
 * conflicts, F_GETLK, range splitting, release on close and exit,
 * blocking waits, EINTR, EDEADLK. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#define TRY(name, call)                                                        \
    do {                                                                       \
        errno = 0;                                                             \
        long rc_ = (call);                                                     \
        printf("%s: %ld %s\n", name, rc_, rc_ < 0 ? strerror(errno) : "");     \
    } while (0)

static char path[64];

static int lk(int fd, int cmd, short type, off_t start, off_t len) {
    struct flock f = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    return fcntl(fd, cmd, &f);
}

/* Prints what F_GETLK (or F_OFD_GETLK) says about a write lock at [start, start+len). */
static void getlk(const char *what, int fd, int cmd, off_t start, off_t len, pid_t owner) {
    struct flock f = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    if (fcntl(fd, cmd, &f) < 0) { printf("%s: getlk %s\n", what, strerror(errno)); return; }
    if (f.l_type == F_UNLCK) { printf("%s: unlocked\n", what); return; }
    printf("%s: %s start=%ld len=%ld pid=%s\n", what, f.l_type == F_WRLCK ? "write" : "read",
           (long)f.l_start, (long)f.l_len,
           f.l_pid == owner ? "owner" : f.l_pid == -1 ? "-1" : "other");
}

static void on_usr1(int s) { (void)s; }

static void child_wait(pid_t c) {
    int st;
    waitpid(c, &st, 0);
}

static void posix_locks(void) {
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    char buf[100] = {0};
    write(fd, buf, sizeof buf);
    pid_t me = getpid();
    TRY("lock [0,10)", lk(fd, F_SETLK, F_WRLCK, 0, 10));
    pid_t c = fork();
    if (c == 0) {
        getlk("child sees", fd, F_GETLK, 5, 1, me);
        TRY("child conflicting", lk(fd, F_SETLK, F_WRLCK, 5, 1));
        TRY("child beside", lk(fd, F_SETLK, F_RDLCK, 10, 10));
        _exit(0);
    }
    child_wait(c);
    getlk("after child exit", fd, F_GETLK, 10, 1, me);

    /* split by unlocking the middle */
    lk(fd, F_SETLK, F_WRLCK, 0, 100);
    lk(fd, F_SETLK, F_UNLCK, 40, 20);
    c = fork();
    if (c == 0) {
        getlk("hole", fd, F_GETLK, 45, 1, me);
        getlk("left", fd, F_GETLK, 35, 1, me);
        getlk("right", fd, F_GETLK, 65, 0, me);
        _exit(0);
    }
    child_wait(c);
    /* read locks share; a read lock downgrades */
    lk(fd, F_SETLK, F_RDLCK, 0, 0);
    c = fork();
    if (c == 0) {
        TRY("child read lock", lk(fd, F_SETLK, F_RDLCK, 0, 50));
        TRY("child write lock", lk(fd, F_SETLK, F_WRLCK, 0, 50));
        _exit(0);
    }
    child_wait(c);
    /* closing any fd of the file drops the process's locks */
    lk(fd, F_SETLK, F_WRLCK, 0, 0);
    int other = open(path, O_RDONLY);
    close(other);
    c = fork();
    if (c == 0) {
        getlk("after closing another fd", fd, F_GETLK, 0, 0, me);
        _exit(0);
    }
    child_wait(c);

    /* F_SETLKW waits for the holder */
    lk(fd, F_SETLK, F_WRLCK, 0, 1);
    int p[2];
    pipe(p);
    c = fork();
    if (c == 0) {
        close(p[0]);
        write(p[1], "r", 1);
        lk(fd, F_SETLKW, F_WRLCK, 0, 1);
        printf("child got the lock\n");
        _exit(0);
    }
    char ch;
    read(p[0], &ch, 1);
    usleep(50000);
    printf("parent unlocks\n");
    lk(fd, F_SETLK, F_UNLCK, 0, 1);
    child_wait(c);

    /* a lock taken by a process that exits is gone */
    c = fork();
    if (c == 0) { lk(fd, F_SETLK, F_WRLCK, 0, 0); _exit(0); }
    child_wait(c);
    getlk("after holder exit", fd, F_GETLK, 0, 0, me);

    /* EINTR */
    lk(fd, F_SETLK, F_WRLCK, 0, 1);
    c = fork();
    if (c == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_usr1;
        sigaction(SIGUSR1, &sa, 0);
        write(p[1], "r", 1);
        TRY("child interrupted", lk(fd, F_SETLKW, F_WRLCK, 0, 1));
        _exit(0);
    }
    read(p[0], &ch, 1);
    usleep(50000);
    kill(c, SIGUSR1);
    child_wait(c);

    /* EDEADLK: the child holds 1 and waits for 0; the parent asks for 1 */
    c = fork();
    if (c == 0) {
        lk(fd, F_SETLK, F_WRLCK, 1, 1);
        write(p[1], "r", 1);
        lk(fd, F_SETLKW, F_WRLCK, 0, 1);
        printf("child got 0\n");
        _exit(0);
    }
    read(p[0], &ch, 1);
    usleep(50000);
    TRY("parent deadlock", lk(fd, F_SETLKW, F_WRLCK, 1, 1));
    lk(fd, F_SETLK, F_UNLCK, 0, 0);
    child_wait(c);

    /* argument errors */
    int ro = open(path, O_RDONLY);
    TRY("write lock on read-only fd", lk(ro, F_SETLK, F_WRLCK, 0, 1));
    struct flock f = {.l_type = F_RDLCK, .l_whence = 7};
    TRY("bad whence", fcntl(fd, F_SETLK, &f));
    TRY("negative start", lk(fd, F_SETLK, F_RDLCK, -5, 1));
    TRY("bad type", lk(fd, F_SETLK, 9, 0, 1));
    TRY("negative len", lk(fd, F_SETLK, F_RDLCK, 10, -5));
    close(ro);
    close(fd);
}

static void ofd_locks(void) {
    int a = open(path, O_RDWR);
    int b = open(path, O_RDWR);
    TRY("ofd lock a", lk(a, F_OFD_SETLK, F_WRLCK, 0, 10));
    TRY("ofd lock b", lk(b, F_OFD_SETLK, F_WRLCK, 5, 10));
    getlk("ofd b sees", b, F_OFD_GETLK, 0, 1, 0);
    TRY("posix lock in the same process", lk(b, F_SETLK, F_WRLCK, 0, 1));
    int d = dup(a);
    close(a);
    TRY("still held through a dup", lk(b, F_OFD_SETLK, F_WRLCK, 5, 10));
    close(d);
    TRY("after the last close", lk(b, F_OFD_SETLK, F_WRLCK, 5, 10));
    struct flock f = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_pid = 1};
    TRY("ofd with a pid", fcntl(b, F_OFD_SETLK, &f));
    close(b);
}

static void flocks(void) {
    int a = open(path, O_RDONLY);
    int b = open(path, O_RDONLY);
    TRY("flock a ex", flock(a, LOCK_EX));
    TRY("flock b ex nb", flock(b, LOCK_EX | LOCK_NB));
    TRY("flock b sh nb", flock(b, LOCK_SH | LOCK_NB));
    pid_t c = fork();
    if (c == 0) {
        /* the same open file description: already ours */
        TRY("child flock a ex nb", flock(a, LOCK_EX | LOCK_NB));
        _exit(0);
    }
    child_wait(c);
    TRY("flock a sh (convert)", flock(a, LOCK_SH));
    TRY("flock b sh nb", flock(b, LOCK_SH | LOCK_NB));
    TRY("flock b ex nb", flock(b, LOCK_EX | LOCK_NB));
    flock(b, LOCK_UN);
    /* a blocked flock is woken when the holder closes */
    flock(a, LOCK_EX);
    c = fork();
    if (c == 0) {
        close(a);
        int x = open(path, O_RDONLY);
        flock(x, LOCK_EX);
        printf("child got the flock\n");
        _exit(0);
    }
    usleep(50000);
    printf("parent closes\n");
    close(a);
    child_wait(c);
    TRY("flock bad op", flock(b, 0));
    TRY("flock bad fd", flock(99, LOCK_SH));
    close(b);
}

int main(void) {
    setvbuf(stdout, 0, _IONBF, 0);
    snprintf(path, sizeof path, "/tmp/locks-test-%d", getpid());
    posix_locks();
    ofd_locks();
    flocks();
    unlink(path);
    return 0;
}
