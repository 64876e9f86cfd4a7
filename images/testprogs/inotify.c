/* inotify(7) for changes made by the program itself: the events of each
 * file operation and their order, watches per inode (hard links,
 * renames), the watch flags, coalescing, the queue limit, read sizes,
 * FIONREAD, poll, epoll and a blocking read. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "try.h"

static char dir[64];
static char p[256];

static const char *at(const char *name) {
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

static void mask_names(uint32_t m) {
    static const struct { uint32_t bit; const char *name; } names[] = {
        {IN_ACCESS, "ACCESS"}, {IN_MODIFY, "MODIFY"}, {IN_ATTRIB, "ATTRIB"},
        {IN_CLOSE_WRITE, "CLOSE_WRITE"}, {IN_CLOSE_NOWRITE, "CLOSE_NOWRITE"},
        {IN_OPEN, "OPEN"}, {IN_MOVED_FROM, "MOVED_FROM"}, {IN_MOVED_TO, "MOVED_TO"},
        {IN_CREATE, "CREATE"}, {IN_DELETE, "DELETE"}, {IN_DELETE_SELF, "DELETE_SELF"},
        {IN_MOVE_SELF, "MOVE_SELF"}, {IN_UNMOUNT, "UNMOUNT"}, {IN_Q_OVERFLOW, "Q_OVERFLOW"},
        {IN_IGNORED, "IGNORED"}, {IN_ISDIR, "ISDIR"},
    };
    const char *sep = "";
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (m & names[i].bit) { printf("%s%s", sep, names[i].name); sep = "|"; }
    if (!m) printf("0");
}

static uint32_t last_cookie;

/* Prints every queued event; returns how many. */
static int drain(const char *what, int fd) {
    char buf[65536] __attribute__((aligned(8)));
    int count = 0;
    printf("-- %s\n", what);
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) break;
        for (char *q = buf; q < buf + n;) {
            struct inotify_event *e = (struct inotify_event *)q;
            printf("  wd=%d ", e->wd);
            mask_names(e->mask);
            if (e->cookie) {
                printf(" cookie=%s", e->cookie == last_cookie ? "same" : "new");
                last_cookie = e->cookie;
            }
            if (e->len) printf(" name=%s", e->name);
            printf("\n");
            q += sizeof *e + e->len;
            count++;
        }
    }
    fcntl(fd, F_SETFL, fl);
    return count;
}

static void touch(const char *path) { close(open(path, O_WRONLY | O_CREAT, 0644)); }

static void file_events(int in) {
    int wd = inotify_add_watch(in, dir, IN_ALL_EVENTS);
    printf("dir wd %d\n", wd);
    int fd = open(at("a"), O_WRONLY | O_CREAT, 0644);
    write(fd, "hello", 5);
    write(fd, "again", 5); /* coalesced with the previous MODIFY */
    close(fd);
    drain("create, write twice, close", in);
    char buf[16];
    fd = open(at("a"), O_RDONLY);
    read(fd, buf, sizeof buf);
    read(fd, buf, sizeof buf); /* end of file: no event */
    close(fd);
    drain("open, read, close", in);
    chmod(at("a"), 0600);
    truncate(at("a"), 2);
    struct timespec ts[2] = {{1, 0}, {2, 0}};
    utimensat(AT_FDCWD, at("a"), ts, 0);
    struct timespec only_atime[2] = {{3, 0}, {0, UTIME_OMIT}};
    utimensat(AT_FDCWD, at("a"), only_atime, 0);
    fd = open(at("a"), O_WRONLY | O_TRUNC);
    ftruncate(fd, 10);
    close(fd);
    drain("chmod, truncate, utimensat, O_TRUNC, ftruncate", in);
    mkdir(at("sub"), 0755);
    int sub = inotify_add_watch(in, at("sub"), IN_ALL_EVENTS);
    printf("sub wd %d\n", sub);
    char to[256];
    snprintf(to, sizeof to, "%s/sub/b", dir);
    rename(at("a"), to);
    drain("mkdir, rename into sub", in);
    int fw = inotify_add_watch(in, to, IN_ALL_EVENTS);
    printf("file wd %d\n", fw);
    link(to, at("hard"));
    fd = open(at("hard"), O_WRONLY);
    write(fd, "x", 1);
    close(fd);
    drain("link, write through the other name", in);
    unlink(at("hard"));
    rename(to, at("back"));
    drain("unlink one link, rename back", in);
    unlink(at("back"));
    drain("unlink the last link", in);
    rmdir(at("sub"));
    drain("rmdir a watched directory", in);
    DIR *d = opendir(dir);
    while (readdir(d)) {}
    closedir(d);
    drain("list the watched directory", in);
    touch(at("x"));
    touch(at("y"));
    drain("touch", in);
    char x[256];
    snprintf(x, sizeof x, "%s/x", dir);
    int yw = inotify_add_watch(in, at("y"), IN_ALL_EVENTS);
    printf("y wd %d\n", yw);
    rename(x, at("y"));
    drain("rename over an existing (watched) file", in);
    mkdir(at("d1"), 0755);
    int d1 = inotify_add_watch(in, at("d1"), IN_ALL_EVENTS);
    printf("d1 wd %d\n", d1);
    snprintf(x, sizeof x, "%s/d2", dir);
    rename(at("d1"), x);
    chmod(x, 0700);
    rmdir(x);
    drain("rename, chmod and rmdir of a watched directory", in);
    symlink("y", at("sym"));
    mknod(at("fifo"), S_IFIFO | 0600, 0);
    unlink(at("sym"));
    unlink(at("fifo"));
    unlink(at("y"));
    drain("symlink, mknod, unlinks", in);
    TRY("rm dir watch", inotify_rm_watch(in, wd));
    drain("after rm_watch", in);
    TRY("rm it again", inotify_rm_watch(in, wd));
}

static void flags(int in) {
    touch(at("f"));
    symlink("f", at("link"));
    TRY("onlydir on a file", inotify_add_watch(in, at("f"), IN_MODIFY | IN_ONLYDIR));
    int w1 = inotify_add_watch(in, at("f"), IN_MODIFY);
    int w2 = inotify_add_watch(in, at("link"), IN_ATTRIB); /* follows: the same inode */
    printf("same inode same wd: %d\n", w1 == w2);
    TRY("mask_create on a watched inode", inotify_add_watch(in, at("f"), IN_OPEN | IN_MASK_CREATE));
    TRY("mask_add with mask_create", inotify_add_watch(in, at("f"), IN_OPEN | IN_MASK_ADD | IN_MASK_CREATE));
    int fd = open(at("f"), O_WRONLY);
    write(fd, "1", 1);
    close(fd);
    drain("replaced mask (ATTRIB only): a write is not seen", in);
    inotify_add_watch(in, at("f"), IN_MODIFY | IN_MASK_ADD);
    fd = open(at("f"), O_WRONLY);
    write(fd, "1", 1);
    fchmod(fd, 0644);
    close(fd);
    drain("mask_add MODIFY", in);
    int lw = inotify_add_watch(in, at("link"), IN_ATTRIB | IN_DONT_FOLLOW);
    printf("dont_follow gives another wd: %d\n", lw != w1);
    chmod(at("f"), 0600);
    drain("chmod of the target", in);
    inotify_rm_watch(in, lw);
    inotify_rm_watch(in, w1);
    drain("rm both", in);

    int one = inotify_add_watch(in, at("f"), IN_OPEN | IN_ONESHOT);
    close(open(at("f"), O_RDONLY));
    close(open(at("f"), O_RDONLY));
    drain("oneshot", in);
    TRY("rm the fired oneshot", inotify_rm_watch(in, one));

    int dw = inotify_add_watch(in, dir, IN_MODIFY);
    fd = open(at("f"), O_WRONLY);
    unlink(at("f"));
    write(fd, "z", 1);
    close(fd);
    drain("write after unlink, no EXCL_UNLINK", in);
    inotify_add_watch(in, dir, IN_MODIFY | IN_EXCL_UNLINK);
    touch(at("g"));
    fd = open(at("g"), O_WRONLY);
    unlink(at("g"));
    write(fd, "z", 1);
    close(fd);
    drain("write after unlink, EXCL_UNLINK", in);
    inotify_rm_watch(in, dw);
    unlink(at("link"));
    drain("cleanup", in);
}

static void errors(int in) {
    TRY("init1 bad flags", inotify_init1(0x10));
    TRY("mask 0", inotify_add_watch(in, dir, 0));
    TRY("only flags", inotify_add_watch(in, dir, IN_ONESHOT));
    TRY("missing path", inotify_add_watch(in, at("nope"), IN_ALL_EVENTS));
    TRY("not inotify", inotify_add_watch(0, dir, IN_ALL_EVENTS));
    TRY("bad fd", inotify_add_watch(77, dir, IN_ALL_EVENTS));
    TRY("rm unknown wd", inotify_rm_watch(in, 12345));
    TRY("rm on not inotify", inotify_rm_watch(0, 1));
}

static void reading(void) {
    int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    printf("cloexec %d nonblock %d\n", (fcntl(in, F_GETFD) & FD_CLOEXEC) != 0,
           (fcntl(in, F_GETFL) & O_NONBLOCK) != 0);
    inotify_add_watch(in, dir, IN_CREATE);
    struct pollfd pf = {in, POLLIN, 0};
    TRY("poll before", poll(&pf, 1, 0));
    touch(at("n1"));
    TRY("poll after", poll(&pf, 1, 0));
    printf("revents %x\n", pf.revents);
    int avail = -1;
    ioctl(in, FIONREAD, &avail);
    printf("FIONREAD %d\n", avail);
    char small[64] __attribute__((aligned(8)));
    TRY("read 15 bytes", read(in, small, 15));
    TRY("read 16 bytes (a name follows)", read(in, small, 16));
    TRY("read 31 bytes", read(in, small, 31));
    TRY("read 32 bytes", read(in, small, 32));

    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 7};
    epoll_ctl(ep, EPOLL_CTL_ADD, in, &ev);
    TRY("epoll before", epoll_wait(ep, &ev, 1, 0));
    touch(at("n2"));
    TRY("epoll after", epoll_wait(ep, &ev, 1, 1000));
    printf("epoll data %u\n", ev.data.u32);
    drain("epoll's event", in);
    TRY("read empty nonblocking", read(in, small, sizeof small));
    close(ep);

    /* a blocking read wakes when a child makes the event */
    fcntl(in, F_SETFL, 0);
    pid_t c = fork();
    if (c == 0) {
        usleep(100000);
        touch(at("n3"));
        _exit(0);
    }
    char buf[256] __attribute__((aligned(8)));
    ssize_t n = read(in, buf, sizeof buf);
    struct inotify_event *e = (struct inotify_event *)buf;
    printf("blocking read %ld: ", (long)n);
    mask_names(e->mask);
    printf(" %s\n", e->name);
    waitpid(c, 0, 0);
    unlink(at("n1"));
    unlink(at("n2"));
    unlink(at("n3"));
    close(in);
}

static void overflow(void) {
    int in = inotify_init1(IN_NONBLOCK);
    touch(at("q"));
    inotify_add_watch(in, at("q"), IN_OPEN | IN_CLOSE);
    for (int i = 0; i < 9000; i++) close(open(at("q"), O_RDONLY));
    static char buf[1 << 20] __attribute__((aligned(8)));
    long events = 0, overflows = 0, last_wd = 0;
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n <= 0) break;
        for (char *q = buf; q < buf + n;) {
            struct inotify_event *e = (struct inotify_event *)q;
            events++;
            if (e->mask & IN_Q_OVERFLOW) { overflows++; last_wd = e->wd; }
            q += sizeof *e + e->len;
        }
    }
    printf("overflow: %ld events, %ld overflow with wd %ld\n", events, overflows, last_wd);
    close(in);
    unlink(at("q"));
}

int main(void) {
    setvbuf(stdout, 0, _IONBF, 0);
    snprintf(dir, sizeof dir, "/tmp/inotify-%d", getpid());
    mkdir(dir, 0755);
    int in = inotify_init();
    file_events(in);
    flags(in);
    errors(in);
    close(in);
    reading();
    overflow();
    rmdir(dir);
    return 0;
}
