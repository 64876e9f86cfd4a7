/* Extended attributes (xattr(7)) on a memory file system: `xattr DIR`
 * works in a fresh directory under DIR (a tmpfs: /dev/shm natively, /tmp
 * in the sandbox). The get/set/list/remove families by path, l* and f*;
 * the flag, name and size rules; the namespaces and who may use them
 * (root, then uid 1000 in a child); symlinks, FIFOs, pipes, hard links,
 * sticky directories; ctime and inotify IN_ATTRIB; an image file
 * (/data/hello.txt, copied up by its first set).
 * `xattr edges` (in the sandbox only, as root, with a small tmpfs on
 * /small and a host directory bound on /host holding a file f): the
 * mount's byte budget, a read-only tmpfs, the bind mount, /proc. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "try.h"

static char dir[256];
static char p[512];

static const char *at(const char *name) {
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

/* Prints a name list as names joined by commas. */
static void show_list(const char *what, const char *path, int follow) {
    char buf[1024];
    errno = 0;
    ssize_t n = follow ? listxattr(path, buf, sizeof buf) : llistxattr(path, buf, sizeof buf);
    printf("%s: %zd %s [", what, n, n < 0 ? strerror(errno) : "");
    for (ssize_t i = 0; i < n; i++)
        putchar(buf[i] ? buf[i] : ',');
    printf("]\n");
}

static void show_value(const char *what, const char *path, const char *name) {
    char buf[256];
    errno = 0;
    ssize_t n = getxattr(path, name, buf, sizeof buf - 1);
    printf("%s: %zd %s", what, n, n < 0 ? strerror(errno) : "");
    if (n >= 0)
        printf("'%.*s'", (int)n, buf);
    printf("\n");
}

static void rules(void) {
    const char *f = strdup(at("f"));
    char buf[16];
    TRY("get absent", getxattr(f, "user.a", buf, sizeof buf));
    TRY("list empty", listxattr(f, NULL, 0));
    TRY("set", setxattr(f, "user.a", "hello", 5, 0));
    TRY("get size 0", getxattr(f, "user.a", NULL, 0));
    show_value("get", f, "user.a");
    TRY("get small buffer", getxattr(f, "user.a", buf, 2));
    TRY("create existing", setxattr(f, "user.a", "x", 1, XATTR_CREATE));
    TRY("replace absent", setxattr(f, "user.b", "x", 1, XATTR_REPLACE));
    TRY("bad flag", setxattr(f, "user.a", "x", 1, 4));
    TRY("both flags absent", setxattr(f, "user.b", "x", 1, XATTR_CREATE | XATTR_REPLACE));
    TRY("replace existing", setxattr(f, "user.a", "world!", 6, XATTR_REPLACE));
    show_value("get replaced", f, "user.a");
    TRY("empty name", setxattr(f, "", "x", 1, 0));
    TRY("get empty name", getxattr(f, "", buf, sizeof buf));
    char name[300] = "user.";
    memset(name + 5, 'n', 250);
    name[255] = 0;
    TRY("255-byte name", setxattr(f, name, "x", 1, 0));
    TRY("remove 255-byte name", removexattr(f, name));
    memset(name + 5, 'n', 251);
    name[256] = 0;
    TRY("256-byte name", setxattr(f, name, "x", 1, 0));
    TRY("get 256-byte name", getxattr(f, name, buf, sizeof buf));
    TRY("remove 256-byte name", removexattr(f, name));
    char *big = calloc(1, 65537);
    TRY("value 65537", setxattr(f, "user.big", big, 65537, 0));
    TRY("value 65536", setxattr(f, "user.big", big, 65536, 0));
    TRY("get big size", getxattr(f, "user.big", NULL, 0));
    TRY("get big", getxattr(f, "user.big", big, 65537));
    TRY("remove big", removexattr(f, "user.big"));
    free(big);
    TRY("empty value", setxattr(f, "user.empty", "", 0, 0));
    TRY("get empty value", getxattr(f, "user.empty", buf, sizeof buf));
    TRY("unknown namespace", setxattr(f, "foo.bar", "x", 1, 0));
    TRY("get unknown namespace", getxattr(f, "foo.bar", buf, sizeof buf));
    TRY("no namespace", setxattr(f, "user", "x", 1, 0));
    TRY("system.foo", setxattr(f, "system.foo", "x", 1, 0));
    TRY("bare user.", setxattr(f, "user.", "x", 1, 0));
    TRY("get bare user.", getxattr(f, "user.", buf, sizeof buf));
    TRY("remove bare trusted.", removexattr(f, "trusted."));
    TRY("trusted as root", setxattr(f, "trusted.t", "tv", 2, 0));
    TRY("security as root", setxattr(f, "security.s", "sv", 2, 0));
    TRY("user.zz", setxattr(f, "user.zz", "z", 1, 0));
    TRY("user.m", setxattr(f, "user.m", "m", 1, 0));
    TRY("list size", listxattr(f, NULL, 0));
    TRY("list small buffer", listxattr(f, buf, 4));
    show_list("list", f, 1);
    TRY("remove absent", removexattr(f, "user.nope"));
    TRY("remove", removexattr(f, "user.empty"));
    TRY("get removed", getxattr(f, "user.empty", buf, sizeof buf));
    TRY("remove again", removexattr(f, "user.empty"));
    TRY("missing file", getxattr(at("missing"), "user.a", buf, sizeof buf));
    TRY("missing file list", listxattr(at("missing"), buf, sizeof buf));
}

static void kinds(void) {
    char buf[64];
    TRY("link", link(at("f"), strdup(at("h"))));
    show_value("get through hard link", at("h"), "user.a");
    TRY("set through hard link", setxattr(at("h"), "user.h", "1", 1, 0));
    show_list("list original", at("f"), 1);
    TRY("remove through hard link", removexattr(at("h"), "user.h"));
    TRY("symlink", symlink("f", at("l")));
    TRY("lset user on symlink", lsetxattr(at("l"), "user.x", "1", 1, 0));
    TRY("lget user on symlink", lgetxattr(at("l"), "user.a", buf, sizeof buf));
    TRY("lremove user on symlink", lremovexattr(at("l"), "user.a"));
    TRY("lset trusted on symlink", lsetxattr(at("l"), "trusted.l", "1", 1, 0));
    show_list("llist symlink", at("l"), 0);
    show_list("list through symlink", at("l"), 1);
    TRY("set through symlink", setxattr(at("l"), "user.via", "v", 1, 0));
    show_value("get what it set", at("f"), "user.via");
    TRY("mkfifo", mkfifo(at("p"), 0644));
    TRY("set user on fifo", setxattr(at("p"), "user.x", "1", 1, 0));
    TRY("get user on fifo", getxattr(at("p"), "user.x", buf, sizeof buf));
    TRY("set trusted on fifo", setxattr(at("p"), "trusted.x", "1", 1, 0));
    show_list("list fifo", at("p"), 1);
    TRY("mkdir", mkdir(at("d"), 0755));
    TRY("set user on dir", setxattr(at("d"), "user.d", "dv", 2, 0));
    show_value("get on dir", at("d"), "user.d");
    int fd = open(at("f"), O_RDONLY);
    TRY("fset on read-only fd", fsetxattr(fd, "user.fd", "fv", 2, 0));
    TRY("fget", fgetxattr(fd, "user.fd", buf, sizeof buf));
    TRY("flist size", flistxattr(fd, NULL, 0));
    TRY("fremove", fremovexattr(fd, "user.fd"));
    TRY("fremove again", fremovexattr(fd, "user.fd"));
    close(fd);
    TRY("fget closed fd", fgetxattr(fd, "user.a", buf, sizeof buf));
    fd = open(at("f"), O_PATH);
    TRY("fget O_PATH fd", fgetxattr(fd, "user.a", buf, sizeof buf));
    TRY("fset O_PATH fd", fsetxattr(fd, "user.a", "x", 1, 0));
    TRY("flist O_PATH fd", flistxattr(fd, buf, sizeof buf));
    close(fd);
    int pfd[2];
    if (pipe(pfd) == 0) {
        TRY("fget user on pipe", fgetxattr(pfd[0], "user.x", buf, sizeof buf));
        TRY("fset user on pipe", fsetxattr(pfd[0], "user.x", "1", 1, 0));
        TRY("fset trusted on pipe", fsetxattr(pfd[0], "trusted.x", "1", 1, 0));
        close(pfd[0]);
        close(pfd[1]);
    }
}

/* ctime moves on a set and a remove; mtime does not. */
static void times(void) {
    struct stat a, b;
    struct timespec pause = {0, 30 * 1000 * 1000};
    stat(at("f"), &a);
    nanosleep(&pause, NULL);
    TRY("set for ctime", setxattr(at("f"), "user.c", "1", 1, 0));
    stat(at("f"), &b);
    printf("ctime moved: %d mtime kept: %d\n",
           b.st_ctim.tv_sec * 1000000000L + b.st_ctim.tv_nsec >
               a.st_ctim.tv_sec * 1000000000L + a.st_ctim.tv_nsec,
           a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec);
    a = b;
    nanosleep(&pause, NULL);
    TRY("remove for ctime", removexattr(at("f"), "user.c"));
    stat(at("f"), &b);
    printf("ctime moved: %d\n", b.st_ctim.tv_nsec != a.st_ctim.tv_nsec || b.st_ctim.tv_sec != a.st_ctim.tv_sec);
    nanosleep(&pause, NULL);
    a = b;
    TRY("failed remove", removexattr(at("f"), "user.c"));
    stat(at("f"), &b);
    printf("ctime moved: %d\n", b.st_ctim.tv_nsec != a.st_ctim.tv_nsec || b.st_ctim.tv_sec != a.st_ctim.tv_sec);
}

static void events(void) {
    int in = inotify_init1(IN_NONBLOCK);
    inotify_add_watch(in, at("f"), IN_ALL_EVENTS);
    inotify_add_watch(in, dir, IN_ALL_EVENTS);
    setxattr(at("f"), "user.e", "1", 1, 0);
    removexattr(at("f"), "user.e");
    removexattr(at("f"), "user.e");
    char buf[4096];
    ssize_t n = read(in, buf, sizeof buf);
    for (char *q = buf; n > 0 && q < buf + n;) {
        struct inotify_event *ev = (struct inotify_event *)q;
        printf("event: wd %d mask %#x name '%s'\n", ev->wd, ev->mask, ev->len ? ev->name : "");
        q += sizeof *ev + ev->len;
    }
    close(in);
}

/* What uid 1000 may do (in a child that drops root). */
static void unprivileged(void) {
    char buf[64];
    setxattr(at("f"), "user.a", "root", 4, 0);
    TRY("create secret", open(at("secret"), O_CREAT | O_WRONLY, 0600));
    setxattr(at("secret"), "user.s", "1", 1, 0);
    TRY("create mine", open(at("mine"), O_CREAT | O_WRONLY, 0600));
    TRY("chown mine", chown(at("mine"), 1000, 1000));
    TRY("mkdir sticky", mkdir(at("sticky"), 0777));
    TRY("chmod sticky", chmod(at("sticky"), 01777));
    TRY("mkdir sticky mine", mkdir(at("stickymine"), 0777));
    TRY("chmod sticky mine", chmod(at("stickymine"), 01777));
    TRY("chown sticky mine", chown(at("stickymine"), 1000, 1000));
    pid_t pid = fork();
    if (pid == 0) {
        if (setresgid(1000, 1000, 1000) || setresuid(1000, 1000, 1000))
            _exit(1);
        TRY("user: set on root's file", setxattr(at("f"), "user.a", "x", 1, 0));
        TRY("user: remove on root's file", removexattr(at("f"), "user.a"));
        show_value("user: get on root's file", at("f"), "user.a");
        TRY("user: get on unreadable file", getxattr(at("secret"), "user.s", buf, sizeof buf));
        TRY("user: list unreadable file", listxattr(at("secret"), buf, sizeof buf));
        TRY("user: get trusted", getxattr(at("f"), "trusted.t", buf, sizeof buf));
        TRY("user: set trusted", setxattr(at("f"), "trusted.t", "x", 1, 0));
        TRY("user: remove trusted", removexattr(at("f"), "trusted.t"));
        show_value("user: get security", at("f"), "security.s");
        TRY("user: set security", setxattr(at("f"), "security.s", "x", 1, 0));
        TRY("user: set security on own file", setxattr(at("mine"), "security.s", "x", 1, 0));
        show_list("user: list hides trusted", at("f"), 1);
        TRY("user: set on own file", setxattr(at("mine"), "user.o", "x", 1, 0));
        TRY("user: set on sticky dir", setxattr(at("sticky"), "user.o", "x", 1, 0));
        TRY("user: set on own sticky dir", setxattr(at("stickymine"), "user.o", "x", 1, 0));
        TRY("user: unknown namespace", setxattr(at("f"), "foo.bar", "x", 1, 0));
        TRY("user: get unknown namespace on unreadable", getxattr(at("secret"), "foo.bar", buf, sizeof buf));
        fflush(stdout);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    printf("child: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    show_list("root: list shows trusted", at("f"), 1);
}

/* A file of the image: no attributes until a set copies it up. */
static void image(void) {
    const char *f = "/data/hello.txt";
    char buf[64];
    struct stat a, b;
    if (access(f, F_OK) != 0)
        f = "data/hello.txt";
    stat(f, &a);
    TRY("image: get", getxattr(f, "user.i", buf, sizeof buf));
    TRY("image: list", listxattr(f, buf, sizeof buf));
    TRY("image: remove", removexattr(f, "user.i"));
    TRY("image: set", setxattr(f, "user.i", "iv", 2, 0));
    show_value("image: get after set", f, "user.i");
    show_list("image: list after set", f, 1);
    TRY("image: remove after set", removexattr(f, "user.i"));
    stat(f, &b);
    printf("image: same inode %d same size %d\n", a.st_ino == b.st_ino, a.st_size == b.st_size);
}

static void edges(void) {
    char buf[64];
    static char value[65536];
    close(open("/small/f", O_CREAT | O_WRONLY, 0644));
    int n = 0, rc;
    do {
        snprintf(buf, sizeof buf, "user.b%d", n);
        errno = 0;
        rc = setxattr("/small/f", buf, value, sizeof value, 0);
    } while (rc == 0 && ++n < 1000);
    printf("budget: %d values fit, then %s\n", n, strerror(errno));
    TRY("budget: remove one", removexattr("/small/f", "user.b0"));
    TRY("budget: set again", setxattr("/small/f", "user.b0", value, sizeof value, 0));
    TRY("budget: unlink", unlink("/small/f"));
    close(open("/small/g", O_CREAT | O_WRONLY, 0644));
    TRY("budget: freed with the file", setxattr("/small/g", "user.b0", value, sizeof value, 0));
    TRY("ro: mkdir", mkdir("/tmp/ro", 0755));
    TRY("ro: set before", setxattr("/tmp/ro", "user.r", "1", 1, 0));
    TRY("ro: mount", mount("tmpfs", "/tmp/ro", "tmpfs", MS_RDONLY, NULL));
    TRY("ro: set", setxattr("/tmp/ro", "user.r", "1", 1, 0));
    TRY("ro: remove", removexattr("/tmp/ro", "user.r"));
    TRY("ro: get", getxattr("/tmp/ro", "user.r", buf, sizeof buf));
    TRY("ro: list", listxattr("/tmp/ro", buf, sizeof buf));
    TRY("bind: get", getxattr("/host/f", "user.a", buf, sizeof buf));
    TRY("bind: set", setxattr("/host/f", "user.a", "1", 1, 0));
    TRY("bind: list", listxattr("/host/f", buf, sizeof buf));
    TRY("bind: remove", removexattr("/host/f", "user.a"));
    TRY("proc: get", getxattr("/proc/self/status", "user.a", buf, sizeof buf));
    TRY("proc: set", setxattr("/proc/self/status", "user.a", "1", 1, 0));
    TRY("proc: list", listxattr("/proc/self/status", buf, sizeof buf));
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && strcmp(argv[1], "edges") == 0) {
        edges();
        return 0;
    }
    snprintf(dir, sizeof dir, "%s/xattr.%d", argc > 1 ? argv[1] : "/tmp", getpid());
    umask(022);
    if (mkdir(dir, 0755) != 0 || close(open(at("f"), O_CREAT | O_WRONLY, 0644)) != 0) {
        perror(dir);
        return 1;
    }
    rules();
    kinds();
    times();
    events();
    unprivileged();
    image();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}
