// Path syscalls on a writable tree: openat2 and its RESOLVE_* rules, the
// old getdents, renameat2 flags, linkat, mknodat, unlinkat, faccessat2,
// utimensat, fallocate, O_PATH. Works in a scratch directory under the
// working directory and removes it; prints one line per check.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define S "scratch-pathcalls"

static void show(const char *what, long r) {
  if (r < 0)
    printf("%s: %s\n", what, strerrorname_np(errno));
  else
    printf("%s: ok\n", what);
}

static long openat2(int dirfd, const char *path, unsigned long long flags, unsigned long long resolve) {
  struct open_how how = {.flags = flags, .resolve = resolve};
  long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
  if (fd >= 0)
    close(fd);
  return fd;
}

struct old_dirent {
  unsigned long d_ino, d_off;
  unsigned short d_reclen;
  char d_name[];
};

static void old_getdents(int dirfd) {
  char buf[4096];
  long n = syscall(SYS_getdents, dirfd, buf, sizeof buf);
  int count = 0, regular = 0;
  for (long off = 0; off < n;) {
    struct old_dirent *d = (void *)(buf + off);
    char type = buf[off + d->d_reclen - 1];
    count++;
    regular += type == DT_REG;
    off += d->d_reclen;
  }
  printf("getdents: %d entries, %d regular\n", count, regular);
}

int main(void) {
  system("rm -rf " S);
  show("mkdir", mkdir(S, 0755));
  int dir = open(S, O_RDONLY | O_DIRECTORY);
  show("mkdirat", mkdirat(dir, "sub", 0700));
  close(openat(dir, "a", O_CREAT | O_WRONLY, 0644));
  close(openat(dir, "b", O_CREAT | O_WRONLY, 0644));
  show("symlinkat", symlinkat("a", dir, "ln"));
  show("symlinkat abs", symlinkat("/bin", dir, "abs"));
  show("openat2 plain", openat2(dir, "a", O_RDONLY, 0));
  show("openat2 beneath ..", openat2(dir, "../" S "/a", O_RDONLY, RESOLVE_BENEATH));
  show("openat2 beneath abs", openat2(dir, "/bin", O_RDONLY, RESOLVE_BENEATH));
  show("openat2 beneath abs link", openat2(dir, "abs", O_RDONLY, RESOLVE_BENEATH));
  show("openat2 in_root abs link", openat2(dir, "abs", O_RDONLY, RESOLVE_IN_ROOT));
  show("openat2 in_root ../a", openat2(dir, "../../a", O_RDONLY, RESOLVE_IN_ROOT));
  show("openat2 no_symlinks", openat2(dir, "ln", O_RDONLY, RESOLVE_NO_SYMLINKS));
  show("openat2 bad resolve", openat2(dir, "a", O_RDONLY, 1ULL << 40));
  show("openat2 beneath+in_root", openat2(dir, "a", O_RDONLY, RESOLVE_BENEATH | RESOLVE_IN_ROOT));
  show("O_CREAT|O_EXCL on link", openat(dir, "ln", O_CREAT | O_EXCL | O_WRONLY, 0644));
  int p = openat(dir, "ln", O_PATH | O_NOFOLLOW);
  struct stat st;
  show("O_PATH symlink", p);
  fstat(p, &st);
  printf("O_PATH fstat is link: %d\n", S_ISLNK(st.st_mode));
  char c;
  show("read O_PATH", read(p, &c, 1));
  close(p);
  show("renameat2 noreplace", syscall(SYS_renameat2, dir, "a", dir, "b", RENAME_NOREPLACE));
  int fa = openat(dir, "a", O_WRONLY | O_APPEND);
  write(fa, "AAA", 3);
  close(fa);
  show("renameat2 exchange", syscall(SYS_renameat2, dir, "a", dir, "b", RENAME_EXCHANGE));
  fstatat(dir, "b", &st, 0);
  printf("after exchange b size: %ld\n", (long)st.st_size);
  show("linkat follow", linkat(dir, "ln", dir, "hard", AT_SYMLINK_FOLLOW));
  fstatat(dir, "hard", &st, AT_SYMLINK_NOFOLLOW);
  printf("hard: reg %d links %ld\n", S_ISREG(st.st_mode), (long)st.st_nlink);
  show("linkat dir", linkat(dir, "sub", dir, "sub2", 0));
  show("mknodat fifo", mknodat(dir, "fifo", S_IFIFO | 0600, 0));
  show("mknodat reg", mknodat(dir, "reg", S_IFREG | 0600, 0));
  fstatat(dir, "fifo", &st, 0);
  printf("fifo is fifo: %d\n", S_ISFIFO(st.st_mode));
  show("open fifo nonblock write", openat(dir, "fifo", O_WRONLY | O_NONBLOCK));
  show("unlinkat dir without flag", unlinkat(dir, "sub", 0));
  show("unlinkat file with removedir", unlinkat(dir, "reg", AT_REMOVEDIR));
  close(openat(dir, "sub/x", O_CREAT | O_WRONLY, 0600));
  show("rmdir not empty", unlinkat(dir, "sub", AT_REMOVEDIR));
  show("faccessat2 eaccess", syscall(SYS_faccessat2, dir, "b", W_OK, AT_EACCESS));
  struct timespec ts[2] = {{.tv_sec = 100, .tv_nsec = UTIME_OMIT}, {.tv_sec = 12345, .tv_nsec = 6}};
  show("utimensat", utimensat(dir, "b", ts, 0));
  fstatat(dir, "b", &st, 0);
  printf("mtime %ld.%ld\n", (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
  struct timespec bad[2] = {{0, 2000000000}, {0, 0}};
  show("utimensat bad nsec", utimensat(dir, "b", bad, 0));
  int fb = openat(dir, "b", O_RDWR);
  show("fallocate", fallocate(fb, 0, 0, 10000));
  fstat(fb, &st);
  printf("size after fallocate: %ld\n", (long)st.st_size);
  show("fallocate keep_size", fallocate(fb, FALLOC_FL_KEEP_SIZE, 0, 20000));
  fstat(fb, &st);
  printf("size after keep_size: %ld\n", (long)st.st_size);
  show("fsync", fsync(fb));
  show("fdatasync", fdatasync(fb));
  show("ftruncate", ftruncate(fb, 5));
  close(fb);
  show("truncate", truncate(S "/b", 7));
  stat(S "/b", &st);
  printf("size after truncate: %ld\n", (long)st.st_size);
  show("fsync bad fd", fsync(999));
  old_getdents(dir);
  close(dir);
  system("rm -rf " S);
  show("gone", access(S, F_OK));
  return 0;
}
