/* shm: shared mappings. Anonymous shared memory across fork, a
 * process-shared mutex and condition variable, a /tmp file mapped
 * MAP_SHARED (seen by read(2), write(2) and a child), partial munmap,
 * mremap, madvise, mincore, msync, truncation (SIGBUS past the end), and
 * MAP_SHARED of a read-only file. Only the parent prints. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096UL

static sigjmp_buf jump;
static volatile int caught;

static void on_fault(int sig) {
    caught = sig;
    siglongjmp(jump, 1);
}

/* The signal a read of *p raises, 0 if none. */
static int probe(volatile char *p) {
    caught = 0;
    if (!sigsetjmp(jump, 1))
        (void)*p;
    return caught;
}

static const char *signame(int sig) {
    return sig == SIGBUS ? "SIGBUS" : sig == SIGSEGV ? "SIGSEGV" : sig ? "other" : "none";
}

/* Runs fn in a child and waits for it; returns its exit status. */
static int in_child(void (*fn)(void *), void *arg) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        fn(arg);
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void child_writes(void *arg) {
    char *m = arg;
    strcpy(m, "written by the child");
    strcpy(m + PG, "second page too");
}

static void anon_across_fork(void) {
    char *m = mmap(0, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    strcpy(m, "parent's");
    int st = in_child(child_writes, m);
    printf("anon: child status %d, parent reads \"%s\" and \"%s\"\n", st, m, m + PG);
    munmap(m, 2 * PG);
}

struct shared_counter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int go, done;
    long counter;
};

static void count(struct shared_counter *s) {
    for (int i = 0; i < 10000; i++) {
        pthread_mutex_lock(&s->lock);
        s->counter++;
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_lock(&s->lock);
    s->done++;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static void child_counts(void *arg) {
    struct shared_counter *s = arg;
    pthread_mutex_lock(&s->lock);
    while (!s->go)
        pthread_cond_wait(&s->cond, &s->lock);
    pthread_mutex_unlock(&s->lock);
    count(s);
}

static void pshared_mutex(void) {
    struct shared_counter *s =
        mmap(0, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(&s->lock, &ma);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
    pthread_cond_init(&s->cond, &ca);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        child_counts(s);
        _exit(0);
    }
    pthread_mutex_lock(&s->lock);
    s->go = 1;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    count(s);
    pthread_mutex_lock(&s->lock);
    while (s->done < 2)
        pthread_cond_wait(&s->cond, &s->lock);
    pthread_mutex_unlock(&s->lock);
    int st;
    waitpid(pid, &st, 0);
    printf("pshared mutex: counter %ld, done %d, child exited %d\n", s->counter, s->done,
           WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    munmap(s, sizeof *s);
}

static char path[64];

static void child_maps_file(void *arg) {
    (void)arg;
    int fd = open(path, O_RDWR);
    char *m = mmap(0, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
        _exit(1);
    _exit(strcmp(m, "through the mapping") == 0 && strcpy(m + PG, "child's reply") ? 0 : 2);
}

static void tmp_file(void) {
    snprintf(path, sizeof path, "/tmp/shm-test-%d", getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    ftruncate(fd, 2 * PG);
    char *m = mmap(0, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    strcpy(m, "through the mapping");
    char buf[32] = {0};
    pread(fd, buf, sizeof buf - 1, 0);
    printf("file: read(2) sees \"%s\"\n", buf);
    pwrite(fd, "by pwrite", 10, 100);
    printf("file: mapping sees \"%s\"\n", m + 100);
    printf("file: msync %d\n", msync(m, 2 * PG, MS_SYNC));
    int st = in_child(child_maps_file, 0);
    memset(buf, 0, sizeof buf);
    pread(fd, buf, sizeof buf - 1, PG);
    printf("file: child status %d, read(2) sees \"%s\"\n", st, buf);

    /* Grow the file and the mapping: the data stays, the new page is the
     * file's. */
    ftruncate(fd, 3 * PG);
    pwrite(fd, "third page", 11, 2 * PG);
    char *g = mremap(m, 2 * PG, 3 * PG, MREMAP_MAYMOVE);
    printf("file: grown \"%s\" \"%s\"\n", g, g + 2 * PG);

    /* Shrink the file: the page past the end is gone. */
    ftruncate(fd, PG + 10);
    printf("file: after shrink, page 2 %s, page 1 \"%s\"\n", signame(probe(g + 2 * PG)),
           g + PG);
    struct stat sb;
    fstat(fd, &sb);
    printf("file: size %ld\n", (long)sb.st_size);
    munmap(g, 3 * PG);
    close(fd);
    unlink(path);
}

static void child_reads_pages(void *arg) {
    char *m = arg;
    _exit(m[0] == 'a' && m[2 * PG] == 'c' ? 0 : 3);
}

static void partial_munmap(void) {
    char *m = mmap(0, 3 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    m[0] = 'a';
    m[PG] = 'b';
    m[2 * PG] = 'c';
    munmap(m + PG, PG);
    int st = in_child(child_reads_pages, m);
    printf("munmap middle: %c %s %c, child status %d\n", m[0], signame(probe(m + PG)),
           m[2 * PG], st);
    munmap(m, 3 * PG);
}

static void child_writes_moved(void *arg) {
    char *m = arg;
    strcpy(m + 10, "child after move");
}

static void anon_mremap(void) {
    char *m = mmap(0, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    strcpy(m + PG, "kept");
    /* Block growth in place. */
    char *block = mmap(m + 2 * PG, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    char *g = mremap(m, 2 * PG, 4 * PG, MREMAP_MAYMOVE);
    int st = in_child(child_writes_moved, g);
    printf("mremap: moved %d, \"%s\", child status %d, \"%s\"\n", g != m, g + PG, st, g + 10);
    printf("mremap: past the object %s\n", signame(probe(g + 3 * PG)));
    char *again = mremap(g, 0, PG, MREMAP_MAYMOVE);
    printf("mremap: second view \"%s\"\n", again + 10);
    munmap(again, PG);
    munmap(g, 4 * PG);
    if (block != MAP_FAILED)
        munmap(block, PG);
}

static void advice(void) {
    char *m = mmap(0, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    unsigned char v[2];
    mincore(m, 2 * PG, v);
    printf("mincore fresh: %d %d\n", v[0] & 1, v[1] & 1);
    strcpy(m, "survives dontneed");
    madvise(m, PG, MADV_DONTNEED);
    mincore(m, 2 * PG, v);
    printf("mincore after dontneed: %d %d, \"%s\"\n", v[0] & 1, v[1] & 1, m);
    errno = 0;
    int r = madvise(m, PG, MADV_FREE);
    printf("madvise free: %d errno %d\n", r, errno);
    r = msync(m + 1, PG, MS_SYNC);
    printf("msync unaligned: %d errno %d\n", r, errno);
    r = msync(m, PG, MS_SYNC | MS_ASYNC);
    printf("msync both: %d errno %d\n", r, errno);
    munmap(m + PG, PG);
    r = msync(m, 2 * PG, MS_ASYNC);
    printf("msync hole: %d errno %d\n", r, errno);
    printf("msync: %d\n", msync(m, PG, MS_INVALIDATE));
    munmap(m, PG);
}

static void read_only_file(void) {
    int fd = open("data/hello.txt", O_RDONLY);
    if (fd < 0)
        fd = open("/data/hello.txt", O_RDONLY);
    errno = 0;
    void *w = mmap(0, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    printf("read-only file, shared writable: %s errno %d\n", w == MAP_FAILED ? "failed" : "mapped",
           errno);
    char *r = mmap(0, PG, PROT_READ, MAP_SHARED, fd, 0);
    printf("read-only file, shared readable: %.12s\n", r == MAP_FAILED ? "failed" : r);
    errno = 0;
    int p = mprotect(r, PG, PROT_READ | PROT_WRITE);
    printf("mprotect writable: %d errno %d\n", p, errno);
    munmap(r, PG);
    close(fd);
}

int main(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_fault;
    sa.sa_flags = SA_NODEFER;
    sigaction(SIGBUS, &sa, 0);
    sigaction(SIGSEGV, &sa, 0);
    anon_across_fork();
    pshared_mutex();
    tmp_file();
    partial_munmap();
    anon_mremap();
    advice();
    read_only_file();
    return 0;
}
