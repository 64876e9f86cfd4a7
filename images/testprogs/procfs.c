// /proc as a process sees it: its own stat, status, statm, cmdline,
// environ, limits, fd links and fdinfo, task/, a child's status while it
// sleeps, as a zombie and once reaped, and the system-wide files. Prints
// facts that hold on any Linux (never pids or times), so a native run and
// a sandboxed run must print the same.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int fails;

static void check(int ok, const char *what) {
    printf("%s %s\n", ok ? "ok" : "FAIL", what);
    if (!ok) fails++;
}

static ssize_t slurp(const char *path, char *buf, size_t size) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -errno;
    size_t n = 0;
    ssize_t r;
    while (n < size - 1 && (r = read(fd, buf + n, size - 1 - n)) > 0) n += r;
    close(fd);
    buf[n] = 0;
    return n;
}

// The fields of a stat line after "(comm)": field 3 on, as strings.
static int stat_fields(const char *line, char *comm, char fields[64][32]) {
    const char *open = strchr(line, '('), *close = strrchr(line, ')');
    if (!open || !close) return 0;
    memcpy(comm, open + 1, close - open - 1);
    comm[close - open - 1] = 0;
    int n = 0;
    const char *p = close + 2;
    while (*p && n < 64) {
        int len = strcspn(p, " \n");
        snprintf(fields[n++], 32, "%.*s", len, p);
        p += len;
        while (*p == ' ' || *p == '\n') p++;
    }
    return n + 2;
}

static long field(char fields[64][32], int i) { return atol(fields[i - 3]); }

// The value of "Key:" in a status text.
static const char *status_value(const char *text, const char *key, char *out) {
    char pat[64];
    snprintf(pat, sizeof pat, "\n%s:\t", key);
    const char *p = strstr(text, pat);
    if (!p) return NULL;
    p += strlen(pat);
    int len = strcspn(p, "\n");
    snprintf(out, 256, "%.*s", len, p);
    return out;
}

static void self_stat(void) {
    char buf[4096], comm[64], f[64][32];
    slurp("/proc/self/stat", buf, sizeof buf);
    int n = stat_fields(buf, comm, f);
    check(n == 52, "stat has 52 fields");
    check(atoi(buf) == getpid(), "stat pid");
    check(strcmp(comm, "procfs") == 0, "stat comm");
    check(strcmp(f[0], "R") == 0, "stat state R");
    check(field(f, 4) == getppid(), "stat ppid");
    check(field(f, 5) == getpgrp(), "stat pgrp");
    check(field(f, 6) == getsid(0), "stat session");
    check(field(f, 20) == 1, "stat num_threads");
    check(field(f, 23) > 0 && field(f, 24) > 0, "stat vsize and rss");
    check(field(f, 38) == SIGCHLD, "stat exit_signal");
    unsigned long arg_start = strtoul(f[48 - 3], 0, 10), arg_end = strtoul(f[49 - 3], 0, 10);
    check(arg_end > arg_start && (char *)arg_start != NULL, "stat arg range");
}

static void self_status(void) {
    char buf[8192], v[256], want[256];
    slurp("/proc/self/status", buf, sizeof buf);
    check(strncmp(buf, "Name:\tprocfs\n", 13) == 0, "status Name first");
    check(status_value(buf, "State", v) && strcmp(v, "R (running)") == 0, "status State");
    snprintf(want, sizeof want, "%d", getpid());
    check(status_value(buf, "Tgid", v) && strcmp(v, want) == 0, "status Tgid");
    check(status_value(buf, "Pid", v) && strcmp(v, want) == 0, "status Pid");
    snprintf(want, sizeof want, "%d", getppid());
    check(status_value(buf, "PPid", v) && strcmp(v, want) == 0, "status PPid");
    snprintf(want, sizeof want, "%d\t%d\t%d\t%d", getuid(), geteuid(), geteuid(), geteuid());
    check(status_value(buf, "Uid", v) && strcmp(v, want) == 0, "status Uid");
    check(status_value(buf, "Threads", v) && strcmp(v, "1") == 0, "status Threads");
    check(status_value(buf, "VmRSS", v) && strstr(v, " kB"), "status VmRSS in kB");
    // The field names, in order.
    printf("status keys:");
    for (char *line = buf; *line;) {
        char *colon = strchr(line, ':'), *nl = strchr(line, '\n');
        if (!colon || !nl) break;
        printf(" %.*s", (int)(colon - line), line);
        line = nl + 1;
    }
    printf("\n");
}

static void self_misc(int argc, char **argv) {
    char buf[8192], want[8192];
    ssize_t n = slurp("/proc/self/cmdline", buf, sizeof buf);
    size_t w = 0;
    for (int i = 0; i < argc; i++) {
        strcpy(want + w, argv[i]);
        w += strlen(argv[i]) + 1;
    }
    check(n == (ssize_t)w && memcmp(buf, want, w) == 0, "cmdline is argv");
    n = slurp("/proc/self/environ", buf, sizeof buf);
    w = 0;
    for (char **e = environ; *e && w < sizeof want - 256; e++) {
        strcpy(want + w, *e);
        w += strlen(*e) + 1;
    }
    check(n == (ssize_t)w && memcmp(buf, want, w) == 0, "environ is the environment");
    slurp("/proc/self/comm", buf, sizeof buf);
    check(strcmp(buf, "procfs\n") == 0, "comm");
    slurp("/proc/self/statm", buf, sizeof buf);
    long a[7];
    check(sscanf(buf, "%ld %ld %ld %ld %ld %ld %ld", a, a + 1, a + 2, a + 3, a + 4, a + 5, a + 6) == 7 && a[0] >= a[1] && a[1] > 0, "statm");
    slurp("/proc/self/limits", buf, sizeof buf);
    check(strncmp(buf, "Limit                     Soft Limit           Hard Limit           Units     \n", 79) == 0, "limits header");
    check(strstr(buf, "\nMax open files            ") != NULL, "limits open files");
    char link[256];
    n = readlink("/proc/self", link, sizeof link - 1);
    link[n < 0 ? 0 : n] = 0;
    snprintf(want, sizeof want, "%d", getpid());
    check(strcmp(link, want) == 0, "/proc/self is the pid");
    n = readlink("/proc/thread-self", link, sizeof link - 1);
    link[n < 0 ? 0 : n] = 0;
    snprintf(want, sizeof want, "%d/task/%d", getpid(), (int)syscall(SYS_gettid));
    check(strcmp(link, want) == 0, "/proc/thread-self");
    n = readlink("/proc/self/exe", link, sizeof link - 1);
    link[n < 0 ? 0 : n] = 0;
    check(n > 0 && strcmp(strrchr(link, '/'), "/procfs") == 0, "exe link");
    char cwd[256];
    n = readlink("/proc/self/cwd", link, sizeof link - 1);
    link[n < 0 ? 0 : n] = 0;
    check(getcwd(cwd, sizeof cwd) && strcmp(link, cwd) == 0, "cwd link");
    struct stat st;
    check(lstat("/proc/self", &st) == 0 && S_ISLNK(st.st_mode), "/proc/self is a symlink");
    check(stat("/proc/self/", &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid(), "/proc/self/ is the caller's directory");
}

static void fd_links(void) {
    int p[2];
    pipe(p);
    char path[64], link[256];
    struct stat st;
    fstat(p[0], &st);
    snprintf(path, sizeof path, "/proc/self/fd/%d", p[0]);
    ssize_t n = readlink(path, link, sizeof link - 1);
    link[n < 0 ? 0 : n] = 0;
    char want[64];
    snprintf(want, sizeof want, "pipe:[%lu]", (unsigned long)st.st_ino);
    check(strcmp(link, want) == 0, "pipe fd link");
    struct stat lst;
    check(lstat(path, &lst) == 0 && (lst.st_mode & 0777) == 0500, "read end link mode");
    // Opening the write end's link writes into the same pipe.
    snprintf(path, sizeof path, "/proc/self/fd/%d", p[1]);
    int w = open(path, O_WRONLY);
    check(w >= 0 && write(w, "hey", 3) == 3, "write through the fd link");
    char got[8] = {0};
    check(read(p[0], got, 3) == 3 && strcmp(got, "hey") == 0, "read what went through the link");
    close(w);
    // A file opened through its link is a new open file description.
    int f = open("/proc/self/cmdline", O_RDONLY);
    char b[5];
    read(f, b, 5);
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", f);
    char info[512];
    slurp(path, info, sizeof info);
    check(strncmp(info, "pos:\t5\nflags:\t0100000\n", 22) == 0, "fdinfo pos and flags");
    check(strstr(info, "\nmnt_id:\t") != NULL, "fdinfo mnt_id");
    int c = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", c);
    slurp(path, info, sizeof info);
    check(strncmp(info, "pos:\t0\nflags:\t02100000\n", 23) == 0, "fdinfo O_CLOEXEC");
    close(c);
    close(f);
    int e = open("data/hello.txt", O_RDONLY);
    read(e, b, 5);
    snprintf(path, sizeof path, "/proc/self/fd/%d", e);
    int again = open(path, O_RDONLY);
    char first[6] = {0};
    check(again >= 0 && read(again, first, 5) == 5 && strcmp(first, "hello") == 0, "open through a fd link starts anew");
    n = readlink(path, link, sizeof link - 1);
    link[n < 0 ? 0 : n] = 0;
    check(n > 0 && strstr(link, "/data/hello.txt") != NULL, "file fd link");
    close(again);
    close(e);
    close(p[0]);
    close(p[1]);
    snprintf(path, sizeof path, "/proc/self/fd/%d", p[0]);
    check(readlink(path, link, sizeof link) < 0 && errno == ENOENT, "closed fd has no link");
}

static int count_tasks(void) {
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    if (d) closedir(d);
    return n;
}

static pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
static volatile int thread_tid;

static void *sleeper(void *arg) {
    (void)arg;
    thread_tid = syscall(SYS_gettid);
    pthread_mutex_lock(&gate);
    pthread_mutex_unlock(&gate);
    return NULL;
}

static void tasks(void) {
    check(count_tasks() == 1, "one task");
    pthread_mutex_lock(&gate);
    pthread_t th;
    pthread_create(&th, NULL, sleeper, NULL);
    while (!thread_tid) usleep(1000);
    check(count_tasks() == 2, "two tasks with a thread");
    char path[128], buf[4096], comm[64], f[64][32];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", thread_tid);
    slurp(path, buf, sizeof buf);
    check(atoi(buf) == thread_tid && stat_fields(buf, comm, f) == 52, "thread stat");
    slurp("/proc/self/status", buf, sizeof buf);
    check(strstr(buf, "\nThreads:\t2\n") != NULL, "status Threads 2");
    pthread_mutex_unlock(&gate);
    pthread_join(th, NULL);
    check(count_tasks() == 1, "one task after join");
}

static char child_state(pid_t pid) {
    char path[64], buf[4096], comm[64], f[64][32];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    if (slurp(path, buf, sizeof buf) < 0) return '-';
    stat_fields(buf, comm, f);
    return f[0][0];
}

static void child(void) {
    int go[2];
    pipe(go);
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        close(go[1]);
        read(go[0], &c, 1);
        _exit(3);
    }
    close(go[0]);
    for (int i = 0; i < 6000 && child_state(pid) != 'S'; i++) usleep(5000);
    check(child_state(pid) == 'S', "child sleeping");
    char path[64], buf[8192], v[256], want[32];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    slurp(path, buf, sizeof buf);
    snprintf(want, sizeof want, "%d", getpid());
    check(status_value(buf, "PPid", v) && strcmp(v, want) == 0, "child status PPid");
    check(status_value(buf, "State", v) && strcmp(v, "S (sleeping)") == 0, "child status State");
    // Listed in /proc.
    DIR *d = opendir("/proc");
    struct dirent *e;
    int listed = 0;
    while ((e = readdir(d)))
        if (atoi(e->d_name) == pid && e->d_type == DT_DIR) listed = 1;
    closedir(d);
    check(listed, "child listed in /proc");
    write(go[1], "x", 1);
    siginfo_t si;
    waitid(P_PID, pid, &si, WEXITED | WNOWAIT);
    check(child_state(pid) == 'Z', "child zombie");
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    slurp(path, buf, sizeof buf);
    char comm[64], f[64][32];
    stat_fields(buf, comm, f);
    check(field(f, 52) == (3 << 8) && field(f, 23) == 0, "zombie exit_code and no memory");
    snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
    check(slurp(path, buf, sizeof buf) == 0, "zombie cmdline empty");
    waitpid(pid, NULL, 0);
    check(child_state(pid) == '-', "reaped child gone");
    struct stat st;
    snprintf(path, sizeof path, "/proc/%d", pid);
    check(stat(path, &st) < 0 && errno == ENOENT, "reaped child's directory gone");
    close(go[1]);
}

static void system_files(void) {
    char buf[16384];
    slurp("/proc/stat", buf, sizeof buf);
    unsigned long long v[10];
    check(sscanf(buf, "cpu  %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", v, v + 1, v + 2, v + 3, v + 4, v + 5, v + 6, v + 7, v + 8, v + 9) == 10, "stat cpu line");
    check(strstr(buf, "\ncpu0 ") != NULL, "stat cpu0");
    const char *keys[] = {"\nintr ", "\nctxt ", "\nbtime ", "\nprocesses ", "\nprocs_running ", "\nprocs_blocked "};
    int all = 1;
    for (unsigned i = 0; i < sizeof keys / sizeof *keys; i++) all &= strstr(buf, keys[i]) != NULL;
    check(all, "stat counters");
    slurp("/proc/loadavg", buf, sizeof buf);
    double l1, l5, l15;
    int run, total, last;
    check(sscanf(buf, "%lf %lf %lf %d/%d %d", &l1, &l5, &l15, &run, &total, &last) == 6 && run >= 1 && total >= run, "loadavg");
    slurp("/proc/uptime", buf, sizeof buf);
    double up, idle;
    check(sscanf(buf, "%lf %lf", &up, &idle) == 2 && up > 0, "uptime");
    struct utsname u;
    uname(&u);
    slurp("/proc/sys/kernel/osrelease", buf, sizeof buf);
    check(strncmp(buf, u.release, strlen(u.release)) == 0, "osrelease is uname's");
    slurp("/proc/sys/kernel/hostname", buf, sizeof buf);
    check(strncmp(buf, u.nodename, strlen(u.nodename)) == 0, "hostname is uname's");
    slurp("/proc/sys/kernel/ostype", buf, sizeof buf);
    check(strcmp(buf, "Linux\n") == 0, "ostype");
    check(slurp("/proc/sys/kernel/pid_max", buf, sizeof buf) > 0 && atol(buf) >= 32768, "pid_max");
    check(slurp("/proc/sys/fs/nr_open", buf, sizeof buf) > 0 && atol(buf) > 0, "nr_open");
    check(slurp("/sys/devices/system/cpu/online", buf, sizeof buf) > 0 && buf[0] == '0', "sys cpu online");
    int ro = open("/proc/self/status", O_WRONLY);
    check(ro < 0 || write(ro, "x", 1) < 0, "proc files are read-only");
}

// Run as root: a root child's private parts are closed to this process
// once it is uid 1000, its public ones stay open.
static void access_checks(void) {
    int gone[2];
    pipe(gone);
    pid_t pid = fork();
    if (pid == 0) {
        // Ends when the parent does (it cannot kill a root child).
        char c;
        close(gone[1]);
        read(gone[0], &c, 1);
        _exit(0);
    }
    close(gone[0]);
    if (setresgid(1000, 1000, 1000) || setresuid(1000, 1000, 1000)) {
        printf("setuid failed\n");
        return;
    }
    char path[64], buf[4096], link[256];
    const char *closed[] = {"environ", "maps"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "/proc/%d/%s", pid, closed[i]);
        ssize_t r = slurp(path, buf, sizeof buf);
        printf("%s: %s\n", closed[i], r == -EACCES ? "EACCES" : "readable");
    }
    snprintf(path, sizeof path, "/proc/%d/exe", pid);
    printf("exe: %s\n", readlink(path, link, sizeof link) < 0 && errno == EACCES ? "EACCES" : "readable");
    snprintf(path, sizeof path, "/proc/%d/fd", pid);
    DIR *d = opendir(path);
    printf("fd: %s\n", !d && errno == EACCES ? "EACCES" : "listed");
    const char *open_ones[] = {"status", "stat", "cmdline", "comm", "limits"};
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "/proc/%d/%s", pid, open_ones[i]);
        printf("%s: %s\n", open_ones[i], slurp(path, buf, sizeof buf) > 0 ? "readable" : "closed");
    }
    struct stat st;
    snprintf(path, sizeof path, "/proc/%d", pid);
    printf("owner: %d\n", stat(path, &st) == 0 ? (int)st.st_uid : -1);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "access") == 0) {
        access_checks();
        return 0;
    }
    self_stat();
    self_status();
    self_misc(argc, argv);
    fd_links();
    tasks();
    child();
    system_files();
    printf("%s\n", fails ? "FAILED" : "all ok");
    return fails != 0;
}
