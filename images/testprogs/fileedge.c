/* Edge cases of file syscalls that LTP-style suites check: rmdir of ".."
 * and ".", SEEK_DATA/SEEK_HOLE and PUNCH_HOLE on tmpfs, flock's ignored
 * LOCK_MAND, F_DUPFD/dup2 bounds and RLIMIT_NOFILE, sendfile to O_APPEND,
 * O_TMPFILE with linkat, and linking a deleted file. Runs in a directory
 * of /dev/shm (tmpfs natively and in the sandbox); prints one line per
 * check, with errno names. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "try.h"

int main(void) {
    char dir[64];
    snprintf(dir, sizeof dir, "/dev/shm/fileedge-%d", getpid());
    if (mkdir(dir, 0700) || chdir(dir)) {
        perror(dir);
        return 1;
    }
    mkdir("d", 0755);
    TRY("rmdir d/..", rmdir("d/.."));
    TRY("rmdir d/.", rmdir("d/."));
    TRY("rmdir /", rmdir("/"));
    TRY("unlink d/..", unlink("d/.."));

    /* holes: 3 pages, only the middle one written */
    int fd = open("sparse", O_RDWR | O_CREAT, 0600);
    ftruncate(fd, 3 * 4096);
    pwrite(fd, "x", 1, 4096 + 10);
    TRY("SEEK_DATA 0", lseek(fd, 0, SEEK_DATA));
    TRY("SEEK_HOLE 0", lseek(fd, 0, SEEK_HOLE));
    TRY("SEEK_HOLE 4096", lseek(fd, 4096, SEEK_HOLE));
    TRY("SEEK_DATA 8192", lseek(fd, 8192, SEEK_DATA));
    TRY("SEEK_HOLE 8200", lseek(fd, 8200, SEEK_HOLE));
    TRY("SEEK_DATA at end", lseek(fd, 3 * 4096, SEEK_DATA));
    TRY("SEEK_HOLE past end", lseek(fd, 5 * 4096, SEEK_HOLE));
    TRY("SEEK_DATA -1", lseek(fd, -1, SEEK_DATA));
    int dfd = open(".", O_RDONLY | O_DIRECTORY);
    TRY("SEEK_DATA on a directory", lseek(dfd, 0, SEEK_DATA));

    /* punch: the written page becomes a hole again, size stays */
    TRY("punch without KEEP_SIZE", fallocate(fd, FALLOC_FL_PUNCH_HOLE, 4096, 4096));
    TRY("punch one page", fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 4096));
    struct stat st;
    fstat(fd, &st);
    printf("size after punch: %ld\n", (long)st.st_size);
    TRY("SEEK_DATA after punch", lseek(fd, 0, SEEK_DATA));
    pwrite(fd, "abcdefgh", 8, 0);
    TRY("punch 3 bytes", fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 2, 3));
    char buf[16] = {0};
    pread(fd, buf, 8, 0);
    printf("after partial punch: %c%c[%d%d%d]%c%c%c\n", buf[0], buf[1], buf[2], buf[3],
           buf[4], buf[5], buf[6], buf[7]);

    TRY("flock LOCK_MAND", flock(fd, LOCK_MAND | LOCK_READ));
    TRY("flock LOCK_MAND bad fd", flock(-1, LOCK_MAND));
    TRY("flock bad op", flock(fd, 99 & ~LOCK_MAND));

    struct rlimit usual = {1024, 4096};
    setrlimit(RLIMIT_NOFILE, &usual);
    TRY("F_DUPFD -1", fcntl(fd, F_DUPFD, -1));
    TRY("F_DUPFD at the limit", fcntl(fd, F_DUPFD, 1024));
    TRY("dup2 at the limit", dup2(fd, 1024));
    TRY("F_DUPFD below the limit", fcntl(fd, F_DUPFD, 1023));
    close(1023);
    struct rlimit rl = {16, 16};
    setrlimit(RLIMIT_NOFILE, &rl);
    int opened = 0;
    while (dup(fd) >= 0)
        opened++;
    printf("dups until %s at the soft limit of 16: %s\n", strerrorname_np(errno),
           opened > 5 && opened < 16 ? "yes" : "no");
    TRY("F_DUPFD past a lowered limit", fcntl(fd, F_DUPFD, 20));
    for (int i = 5; i < 16; i++)
        if (i != fd && i != dfd)
            close(i);
    struct rlimit big = {1 << 21, 1 << 21};
    TRY("RLIMIT_NOFILE above nr_open", setrlimit(RLIMIT_NOFILE, &big));

    int app = open("app", O_WRONLY | O_CREAT | O_APPEND, 0600);
    TRY("sendfile to O_APPEND", sendfile(app, fd, NULL, 4));

    /* O_TMPFILE */
    TRY("O_TMPFILE read-only", open(".", O_TMPFILE | O_RDONLY, 0600));
    TRY("O_TMPFILE on a file", open("app", O_TMPFILE | O_RDWR, 0600));
    int tf = open(".", O_TMPFILE | O_RDWR, 0640);
    printf("O_TMPFILE opened: %s\n", tf >= 0 ? "yes" : strerrorname_np(errno));
    write(tf, "unnamed", 7);
    fstat(tf, &st);
    printf("tmpfile nlink %ld mode %o size %ld\n", (long)st.st_nlink, st.st_mode & 07777,
           (long)st.st_size);
    char p[64], link[256];
    snprintf(p, sizeof p, "/proc/self/fd/%d", tf);
    ssize_t n = readlink(p, link, sizeof link - 1);
    link[n > 0 ? n : 0] = 0;
    printf("fd link ends in (deleted): %s\n",
           n > 10 && !strcmp(link + strlen(link) - 10, " (deleted)") ? "yes" : link);
    TRY("ls sees no tmpfile", access("unnamed", F_OK));
    TRY("linkat the tmpfile", linkat(AT_FDCWD, p, AT_FDCWD, "named", AT_SYMLINK_FOLLOW));
    fstat(tf, &st);
    printf("nlink after linkat %ld\n", (long)st.st_nlink);
    int nf = open("named", O_RDONLY);
    memset(buf, 0, sizeof buf);
    read(nf, buf, 7);
    printf("named holds: %s\n", buf);
    int ex = open(".", O_TMPFILE | O_RDWR | O_EXCL, 0600);
    snprintf(p, sizeof p, "/proc/self/fd/%d", ex);
    TRY("linkat an O_EXCL tmpfile", linkat(AT_FDCWD, p, AT_FDCWD, "never", AT_SYMLINK_FOLLOW));

    /* a deleted file cannot be linked back */
    int gone = open("gone", O_RDWR | O_CREAT, 0600);
    unlink("gone");
    snprintf(p, sizeof p, "/proc/self/fd/%d", gone);
    TRY("linkat a deleted file", linkat(AT_FDCWD, p, AT_FDCWD, "back", AT_SYMLINK_FOLLOW));
    n = readlink(p, link, sizeof link - 1);
    link[n > 0 ? n : 0] = 0;
    printf("deleted file's link: %s\n", strstr(link, "/gone (deleted)") ? "ok" : link);

    /* a sparse file costs what was written, however large it is */
    int sp = open("huge", O_RDWR | O_CREAT, 0600);
    TRY("ftruncate to 1 TiB", ftruncate(sp, 1LL << 40));
    TRY("pwrite at 512 GiB", pwrite(sp, "x", 1, 1LL << 39));
    fstat(sp, &st);
    printf("huge: size %lld blocks %lld\n", (long long)st.st_size, (long long)st.st_blocks);
    close(sp);
    unlink("huge");

    /* open and rename with trailing slashes, O_CREAT|O_DIRECTORY */
    TRY("O_CREAT|O_DIRECTORY", open("newdir", O_RDONLY | O_CREAT | O_DIRECTORY, 0600));
    TRY("O_CREAT of name/", open("newfile/", O_RDWR | O_CREAT, 0600));
    TRY("rename file to name/", rename("app", "app2/"));
    TRY("rename file/ to name", rename("app/", "app2"));
    TRY("app still there", access("app", F_OK));

    /* statx argument checks */
    struct statx sx;
    TRY("statx reserved mask bit", statx(AT_FDCWD, "app", 0, 0x80000000U, &sx));
    TRY("statx both sync kinds", statx(AT_FDCWD, "app", AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC, STATX_BASIC_STATS, &sx));
    TRY("statx ok", statx(AT_FDCWD, "app", 0, STATX_BASIC_STATS, &sx));
    TRY("SEEK_END on a directory", lseek(dfd, 0, SEEK_END));

    /* pipe capacity */
    int pp[2];
    pipe(pp);
    TRY("F_GETPIPE_SZ", fcntl(pp[0], F_GETPIPE_SZ));
    TRY("F_SETPIPE_SZ 5000", fcntl(pp[1], F_SETPIPE_SZ, 5000));
    TRY("F_GETPIPE_SZ after", fcntl(pp[0], F_GETPIPE_SZ));
    TRY("write more than fits", fcntl(pp[1], F_SETFL, O_NONBLOCK));
    static char chunk[20000];
    TRY("nonblocking write", write(pp[1], chunk, sizeof chunk));
    TRY("F_SETPIPE_SZ below the content", fcntl(pp[1], F_SETPIPE_SZ, 4096));
    TRY("F_GETPIPE_SZ of a file", fcntl(app, F_GETPIPE_SZ));

    /* device nodes (root here, as in CI; opening them depends on the
     * mount's nodev, which differs between hosts) and whiteouts */
    TRY("mknod null copy", mknod("mynull", S_IFCHR | 0666, makedev(1, 3)));
    stat("mynull", &st);
    printf("mynull: chr=%d rdev=%d:%d\n", S_ISCHR(st.st_mode), major(st.st_rdev), minor(st.st_rdev));
    TRY("mknod block", mknod("myblk", S_IFBLK | 0600, makedev(8, 1)));
    TRY("renameat2 WHITEOUT|EXCHANGE", renameat2(AT_FDCWD, "app", AT_FDCWD, "named", RENAME_EXCHANGE | RENAME_WHITEOUT));
    TRY("renameat2 WHITEOUT", renameat2(AT_FDCWD, "app", AT_FDCWD, "moved", RENAME_WHITEOUT));
    lstat("app", &st);
    printf("whiteout: chr=%d rdev=%d:%d mode=%o\n", S_ISCHR(st.st_mode), major(st.st_rdev), minor(st.st_rdev), st.st_mode & 07777);
    TRY("moved is there", access("moved", F_OK));

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}
