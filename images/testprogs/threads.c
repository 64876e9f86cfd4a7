/* Threads: pthread create/join with exit values, mutexes, condition
 * variables, thread-local storage, a barrier, detached threads, signals
 * to a process with threads, and exit_group from a thread. Prints the same
 * lines natively and in the sandbox. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define NTHREADS 8
#define ITERS 20000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static long counter;
static int turn;
static __thread int tls_value;

static void *adder(void *arg) {
    tls_value = (int)(intptr_t)arg;
    for (int i = 0; i < ITERS; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
    }
    if (tls_value != (int)(intptr_t)arg) return (void *)-1;
    return (void *)(intptr_t)(tls_value * 10);
}

/* Threads take turns in order, handing over through a condition variable. */
static void *ping(void *arg) {
    int me = (int)(intptr_t)arg;
    for (int round = 0; round < 50; round++) {
        pthread_mutex_lock(&lock);
        while (turn % 4 != me) pthread_cond_wait(&cond, &lock);
        turn++;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

static pthread_barrier_t barrier;
static int arrived;
static void *at_barrier(void *arg) {
    (void)arg;
    __sync_fetch_and_add(&arrived, 1);
    pthread_barrier_wait(&barrier);
    return (void *)(intptr_t)arrived;
}

static volatile sig_atomic_t got_usr1;
static void on_usr1(int sig) { (void)sig; got_usr1 = 1; }

static void *exiter(void *arg) {
    (void)arg;
    usleep(10000);
    exit(42); /* ends every thread of the process */
}

static void *chdir_umask(void *arg) {
    (void)arg;
    chdir("/tmp");
    umask(077);
    return NULL;
}

static void *pthread_exiter(void *arg) {
    pthread_exit((void *)(intptr_t)(7 + (int)(intptr_t)arg));
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    pthread_t t[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        pthread_create(&t[i], NULL, adder, (void *)(intptr_t)(i + 1));
    long sum = 0;
    for (int i = 0; i < NTHREADS; i++) {
        void *ret;
        pthread_join(t[i], &ret);
        sum += (intptr_t)ret;
    }
    printf("counter %ld (want %d), joined values sum %ld\n", counter, NTHREADS * ITERS, sum);

    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, ping, (void *)(intptr_t)i);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    printf("turns %d\n", turn);

    pthread_barrier_init(&barrier, NULL, 5);
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, at_barrier, NULL);
    __sync_fetch_and_add(&arrived, 1);
    pthread_barrier_wait(&barrier);
    int all = 1;
    for (int i = 0; i < 4; i++) {
        void *ret;
        pthread_join(t[i], &ret);
        all &= (intptr_t)ret == 5;
    }
    printf("barrier: every thread saw 5 arrivals: %s\n", all ? "yes" : "no");

    void *ret;
    pthread_create(&t[0], NULL, pthread_exiter, (void *)(intptr_t)3);
    pthread_join(t[0], &ret);
    printf("pthread_exit value %ld\n", (long)(intptr_t)ret);

    /* Threads share the working directory and umask (CLONE_FS). */
    chdir("/");
    pthread_create(&t[0], NULL, chdir_umask, NULL);
    pthread_join(t[0], NULL);
    char cwd[256];
    mode_t old = umask(022);
    printf("cwd and umask set by a thread: %s %03o\n", getcwd(cwd, sizeof cwd), (unsigned)old);
    int cpu = sched_getcpu();
    printf("sched_getcpu within the CPUs: %s\n",
           cpu >= 0 && cpu < sysconf(_SC_NPROCESSORS_ONLN) ? "yes" : "no");

    pid_t tid = syscall(SYS_gettid);
    printf("main thread: tid == pid: %s\n", tid == getpid() ? "yes" : "no");

    /* A signal sent to the process while the main thread blocks it is
     * taken by the thread that does not. */
    signal(SIGUSR1, on_usr1);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    sigset_t none;
    sigemptyset(&none);
    pthread_create(&t[0], NULL, (void *(*)(void *))sigsuspend, &none);
    usleep(20000);
    kill(getpid(), SIGUSR1);
    pthread_join(t[0], NULL);
    printf("SIGUSR1 taken by the other thread: %s\n", got_usr1 ? "yes" : "no");

    /* exit() in a thread ends the process with its status. */
    pid_t child = fork();
    if (child == 0) {
        pthread_t x;
        pthread_create(&x, NULL, exiter, NULL);
        for (;;) pause();
    }
    int status;
    waitpid(child, &status, 0);
    printf("child with an exiting thread: exited %d status %d\n", WIFEXITED(status),
           WEXITSTATUS(status));

    /* Many short-lived threads. */
    for (int round = 0; round < 25; round++) {
        for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, pthread_exiter, (void *)(intptr_t)i);
        for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    }
    printf("100 threads created and joined\n");
    return 0;
}
