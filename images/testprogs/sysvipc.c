/* System V IPC: shared memory across fork, semaphores (all-or-nothing
 * operations, blocking, SEM_UNDO, timeouts, removal under a waiter) and
 * message queues (types, truncation, blocking, removal). Objects are
 * private or keyed by pid, and ids are never printed, so the output is
 * the same natively and in the sandbox. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

union semun {
    int val;
    struct semid_ds *buf;
    unsigned short *array;
};

static const char *err(long r) { return r < 0 ? strerrorname_np(errno) : "ok"; }

static void nap(int ms) {
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

static int child_status(pid_t pid) {
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void shm(void) {
    key_t key = 0x5b000000 | (getpid() & 0xffffff);
    int id = shmget(key, 10000, IPC_CREAT | IPC_EXCL | 0600);
    printf("shmget: %s\n", err(id));
    printf("again with EXCL: %s\n", err(shmget(key, 10000, IPC_CREAT | IPC_EXCL | 0600)));
    printf("again larger: %s\n", err(shmget(key, 20000, 0600)));
    printf("again same key: %d\n", shmget(key, 100, 0600) == id);
    printf("unknown key: %s\n", err(shmget(key + 1, 100, 0600)));
    printf("size 0: %s\n", err(shmget(IPC_PRIVATE, 0, 0600)));
    struct shmid_ds ds;
    shmctl(id, IPC_STAT, &ds);
    printf("segsz %zu mode %o nattch %lu cpid is me %d\n", ds.shm_segsz,
           ds.shm_perm.mode & 0777, (unsigned long)ds.shm_nattch, ds.shm_cpid == getpid());
    char *p = shmat(id, NULL, 0);
    printf("shmat: %s\n", p == (void *)-1 ? strerrorname_np(errno) : "ok");
    strcpy(p, "parent");
    shmctl(id, IPC_STAT, &ds);
    printf("nattch after shmat %lu\n", (unsigned long)ds.shm_nattch);
    pid_t pid = fork();
    if (pid == 0) {
        printf("child sees %s\n", p);
        strcpy(p + 100, "child wrote");
        _exit(0);
    }
    child_status(pid);
    printf("parent sees %s\n", p + 100);
    char *q = shmat(id, NULL, SHM_RDONLY);
    printf("second attach sees %s, same memory %d\n", q + 100, q != p);
    printf("shmdt inside: %s\n", err(shmdt(p + 4096)));
    printf("shmdt: %s\n", err(shmdt(p)));
    printf("shmdt: %s\n", err(shmdt(q)));
    shmctl(id, IPC_STAT, &ds);
    printf("nattch after shmdt %lu\n", (unsigned long)ds.shm_nattch);
    ds.shm_perm.mode = 0640;
    printf("IPC_SET: %s\n", err(shmctl(id, IPC_SET, &ds)));
    shmctl(id, IPC_STAT, &ds);
    printf("mode now %o\n", ds.shm_perm.mode & 0777);
    printf("IPC_RMID: %s\n", err(shmctl(id, IPC_RMID, NULL)));
    printf("then stat: %s\n", err(shmctl(id, IPC_STAT, &ds)));
    printf("bad command: %s\n", err(shmctl(0, 999, &ds)));
}

static void sem(void) {
    int id = semget(IPC_PRIVATE, 3, 0600);
    printf("semget: %s\n", err(id));
    union semun u;
    unsigned short vals[3] = {1, 2, 3};
    u.array = vals;
    semctl(id, 0, SETALL, u);
    printf("GETVAL 1: %d\n", semctl(id, 1, GETVAL));
    u.val = 40000;
    printf("SETVAL too big: %s\n", err(semctl(id, 0, SETVAL, u)));
    printf("GETVAL bad index: %s\n", err(semctl(id, 7, GETVAL)));
    struct sembuf two[2] = {{0, -1, IPC_NOWAIT}, {1, -5, IPC_NOWAIT}};
    printf("all-or-nothing: %s\n", err(semop(id, two, 2)));
    printf("values kept: %d %d\n", semctl(id, 0, GETVAL), semctl(id, 1, GETVAL));
    struct sembuf bad = {9, 1, 0};
    printf("bad sem_num: %s\n", err(semop(id, &bad, 1)));
    struct sembuf wait0 = {2, 0, 0};
    struct timespec ts = {0, 50000000};
    printf("semtimedop timeout: %s\n", err(semtimedop(id, &wait0, 1, &ts)));

    /* A child blocks taking from semaphore 0, which holds 0 now. */
    struct sembuf take = {0, -1, 0}, give = {0, 1, 0};
    semop(id, &take, 1);
    pid_t pid = fork();
    if (pid == 0) {
        int r = semop(id, &take, 1);
        printf("child took: %s\n", err(r));
        _exit(0);
    }
    while (semctl(id, 0, GETNCNT) != 1) nap(10);
    printf("GETNCNT 1\n");
    semop(id, &give, 1);
    printf("child status %d\n", child_status(pid));
    printf("GETPID is the child's %d\n", semctl(id, 0, GETPID) == pid);

    /* SEM_UNDO: the child's +5 goes when it exits. */
    pid = fork();
    if (pid == 0) {
        struct sembuf up = {1, 5, SEM_UNDO};
        semop(id, &up, 1);
        printf("child raised to %d\n", semctl(id, 1, GETVAL));
        _exit(0);
    }
    child_status(pid);
    printf("after child exit %d\n", semctl(id, 1, GETVAL));

    /* Removal wakes a waiter with EIDRM. */
    pid = fork();
    if (pid == 0) {
        int r = semop(id, &take, 1);
        printf("waiter after removal: %s\n", err(r));
        _exit(0);
    }
    while (semctl(id, 0, GETNCNT) != 1) nap(10);
    const char *rm = err(semctl(id, 0, IPC_RMID));
    child_status(pid);
    printf("IPC_RMID: %s\n", rm);
    printf("GETVAL after removal: %s\n", err(semctl(id, 0, GETVAL)));
}

struct msg {
    long mtype;
    char text[64];
};

static void msg(void) {
    int id = msgget(IPC_PRIVATE, 0600);
    printf("msgget: %s\n", err(id));
    struct msg m;
    for (int t = 3; t >= 1; t--) {
        m.mtype = t;
        snprintf(m.text, sizeof m.text, "message of type %d", t);
        msgsnd(id, &m, strlen(m.text) + 1, 0);
    }
    struct msqid_ds ds;
    msgctl(id, IPC_STAT, &ds);
    printf("qnum %lu cbytes %lu\n", (unsigned long)ds.msg_qnum, (unsigned long)ds.__msg_cbytes);
    ssize_t n = msgrcv(id, &m, sizeof m.text, 2, 0);
    printf("type 2: %zd %ld %s\n", n, m.mtype, m.text);
    n = msgrcv(id, &m, sizeof m.text, -3, 0);
    printf("type -3: %zd %ld %s\n", n, m.mtype, m.text);
    printf("too small: %s\n", err(msgrcv(id, &m, 4, 0, 0)));
    n = msgrcv(id, &m, 4, 3, MSG_NOERROR);
    printf("truncated: %zd %.4s\n", n, m.text);
    printf("empty nowait: %s\n", err(msgrcv(id, &m, sizeof m.text, 0, IPC_NOWAIT)));
    m.mtype = 0;
    printf("type 0 send: %s\n", err(msgsnd(id, &m, 1, 0)));
    pid_t pid = fork();
    if (pid == 0) {
        struct msg r;
        ssize_t k = msgrcv(id, &r, sizeof r.text, 7, 0);
        printf("child got %zd %s\n", k, r.text);
        k = msgrcv(id, &r, sizeof r.text, 8, 0);
        printf("child after removal: %s\n", err(k));
        _exit(0);
    }
    const char *rm;
    nap(50);
    m.mtype = 7;
    strcpy(m.text, "wake up");
    msgsnd(id, &m, 8, 0);
    nap(50);
    rm = err(msgctl(id, IPC_RMID, NULL));
    printf("child status %d\n", child_status(pid));
    printf("IPC_RMID: %s\n", rm);
}

/* `sysvipc send KEY TEXT` and `sysvipc recv KEY`: one message through
 * the queue of KEY (made by whichever comes first), for processes that
 * share an IPC namespace without being related. `sysvipc wait KEY` waits
 * (at most 10 s, else exits 9) until the queue of KEY exists, without
 * making it. */
static int pass(char **argv) {
    key_t key = atoi(argv[2]);
    if (strcmp(argv[1], "wait") == 0) {
        for (int i = 0; i < 1000; i++) {
            if (msgget(key, 0) >= 0) return 0;
            usleep(10000);
        }
        fprintf(stderr, "no message queue with key %d\n", key);
        return 9;
    }
    int id = msgget(key, IPC_CREAT | 0600);
    if (id < 0) {
        perror("msgget");
        return 1;
    }
    struct msg m = {.mtype = 1};
    if (strcmp(argv[1], "send") == 0 && argv[3]) {
        snprintf(m.text, sizeof m.text, "%s", argv[3]);
        return msgsnd(id, &m, strlen(m.text) + 1, 0) < 0;
    }
    if (msgrcv(id, &m, sizeof m.text, 1, 0) < 0) {
        perror("msgrcv");
        return 1;
    }
    printf("got %s\n", m.text);
    msgctl(id, IPC_RMID, NULL);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 3) return pass(argv);
    setvbuf(stdout, NULL, _IOLBF, 0);
    shm();
    sem();
    msg();
    printf("done\n");
    return 0;
}
