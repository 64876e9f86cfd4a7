/* Unix domain sockets: socketpair of each type, names in the file system
 * and the abstract namespace, listen/connect/accept, shutdown and end of
 * file, descriptors and credentials in messages, options, readiness.
 * Prints only what is the same natively and in the sandbox. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHECK(x)                                                         \
    do {                                                                 \
        if (!(x)) {                                                      \
            printf("FAIL line %d: %s (%s)\n", __LINE__, #x, strerror(errno)); \
            exit(1);                                                     \
        }                                                                \
    } while (0)

static const char *err(long r) { return r < 0 ? strerrorname_np(errno) : "ok"; }

static void pairs(void) {
    int sv[2];
    char buf[64];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK(write(sv[0], "abc", 3) == 3);
    CHECK(write(sv[0], "def", 3) == 3);
    int n = 0;
    CHECK(ioctl(sv[1], FIONREAD, &n) == 0);
    printf("stream FIONREAD %d\n", n);
    ssize_t r = read(sv[1], buf, sizeof buf);
    printf("stream read %zd %.*s\n", r, (int)r, buf);
    CHECK(shutdown(sv[0], SHUT_WR) == 0);
    printf("after SHUT_WR read %zd\n", read(sv[1], buf, sizeof buf));
    printf("write on shut side: %s\n", err(send(sv[0], "x", 1, MSG_NOSIGNAL)));
    close(sv[1]);
    printf("peer closed, send: %s\n", err(send(sv[0], "x", 1, MSG_NOSIGNAL)));
    close(sv[0]);

    CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0);
    CHECK(send(sv[0], "one", 3, 0) == 3);
    CHECK(send(sv[0], "second", 6, 0) == 6);
    CHECK(ioctl(sv[1], FIONREAD, &n) == 0);
    printf("dgram FIONREAD %d\n", n);
    r = recv(sv[1], buf, 2, MSG_TRUNC);
    printf("dgram recv(2, MSG_TRUNC) %zd %.2s\n", r, buf);
    r = recv(sv[1], buf, sizeof buf, MSG_PEEK);
    printf("dgram peek %zd %.*s\n", r, (int)r, buf);
    r = recv(sv[1], buf, sizeof buf, 0);
    printf("dgram recv %zd %.*s\n", r, (int)r, buf);
    printf("dgram empty nonblocking: %s\n", err(recv(sv[1], buf, 1, MSG_DONTWAIT)));
    close(sv[0]);
    close(sv[1]);

    CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
    CHECK(send(sv[0], "record-one", 10, 0) == 10);
    CHECK(send(sv[0], "r2", 2, 0) == 2);
    struct iovec iov = {buf, 4};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    r = recvmsg(sv[1], &mh, 0);
    printf("seqpacket recvmsg %zd %.4s trunc=%d\n", r, buf, !!(mh.msg_flags & MSG_TRUNC));
    r = recv(sv[1], buf, sizeof buf, 0);
    printf("seqpacket next %zd %.*s\n", r, (int)r, buf);
    close(sv[0]);
    printf("seqpacket eof %zd\n", recv(sv[1], buf, sizeof buf, 0));
    close(sv[1]);
}

static void print_name(const char *what, struct sockaddr_un *a, socklen_t len) {
    if (len <= offsetof(struct sockaddr_un, sun_path)) {
        printf("%s: unnamed (len %u)\n", what, len);
    } else if (a->sun_path[0] == 0) {
        printf("%s: abstract (len %u)\n", what, len);
    } else {
        printf("%s: %s (len %u)\n", what, a->sun_path, len);
    }
}

static void named_stream(void) {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strcpy(a.sun_path, "sockdir/srv");
    mkdir("sockdir", 0755);
    unlink(a.sun_path);
    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(l >= 0);
    printf("listen unbound: %s\n", err(listen(l, 5)) );
    CHECK(bind(l, (struct sockaddr *)&a, sizeof a) == 0);
    struct stat st;
    CHECK(stat(a.sun_path, &st) == 0);
    printf("socket file is a socket: %d\n", S_ISSOCK(st.st_mode));
    int l2 = socket(AF_UNIX, SOCK_STREAM, 0);
    printf("bind taken name: %s\n", err(bind(l2, (struct sockaddr *)&a, sizeof a)));
    printf("connect to non-listener: %s\n", err(connect(l2, (struct sockaddr *)&a, sizeof a)));
    close(l2);
    CHECK(listen(l, 5) == 0);
    int v;
    socklen_t vl = sizeof v;
    CHECK(getsockopt(l, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl) == 0);
    printf("SO_ACCEPTCONN %d\n", v);
    pid_t pid = fork();
    if (pid == 0) {
        int c = socket(AF_UNIX, SOCK_STREAM, 0);
        CHECK(connect(c, (struct sockaddr *)&a, sizeof a) == 0);
        struct sockaddr_un p;
        socklen_t pl = sizeof p;
        CHECK(getpeername(c, (struct sockaddr *)&p, &pl) == 0);
        /* 1 MiB through the connection: the writer blocks on a full queue. */
        static char big[1 << 20];
        for (size_t i = 0; i < sizeof big; i++) big[i] = (char)(i * 7);
        size_t off = 0;
        while (off < sizeof big) {
            ssize_t w = write(c, big + off, sizeof big - off);
            CHECK(w > 0);
            off += w;
        }
        char ack[8];
        ssize_t r = read(c, ack, sizeof ack);
        /* Printed after the server's lines: the ack comes after them. */
        print_name("client's peer", &p, pl);
        printf("client got ack %zd %.*s\n", r, (int)r, ack);
        fflush(stdout);
        _exit(0);
    }
    struct sockaddr_un p;
    socklen_t pl = sizeof p;
    int s = accept4(l, (struct sockaddr *)&p, &pl, SOCK_CLOEXEC);
    CHECK(s >= 0);
    print_name("accepted peer", &p, pl);
    pl = sizeof p;
    CHECK(getsockname(s, (struct sockaddr *)&p, &pl) == 0);
    print_name("accepted name", &p, pl);
    unsigned long sum = 0, total = 0;
    char buf[4096];
    while (total < (1 << 20)) {
        ssize_t r = read(s, buf, sizeof buf);
        CHECK(r > 0);
        for (ssize_t i = 0; i < r; i++) sum = sum * 31 + (unsigned char)buf[i];
        total += r;
    }
    printf("server read %lu bytes, sum %lx\n", total, sum);
    CHECK(write(s, "ack", 3) == 3);
    int status;
    waitpid(pid, &status, 0);
    printf("client status %d\n", WEXITSTATUS(status));
    char b;
    printf("read after client exit %zd\n", read(s, &b, 1));
    close(s);
    close(l);
    printf("connect after close: %s\n",
           err(connect(socket(AF_UNIX, SOCK_STREAM, 0), (struct sockaddr *)&a, sizeof a)));
    unlink(a.sun_path);
    rmdir("sockdir");
}

static void abstract_dgram(void) {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int len = snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "sbx-test-%d", getpid());
    socklen_t alen = offsetof(struct sockaddr_un, sun_path) + 1 + len;
    int srv = socket(AF_UNIX, SOCK_DGRAM, 0);
    CHECK(bind(srv, (struct sockaddr *)&a, alen) == 0);
    int cli = socket(AF_UNIX, SOCK_DGRAM, 0);
    CHECK(sendto(cli, "hi", 2, 0, (struct sockaddr *)&a, alen) == 2);
    struct sockaddr_un from;
    socklen_t fl = sizeof from;
    char buf[16];
    ssize_t r = recvfrom(srv, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
    printf("abstract recvfrom %zd %.*s ", r, (int)r, buf);
    print_name("from", &from, fl);
    struct sockaddr_un auto_a = {.sun_family = AF_UNIX};
    CHECK(bind(cli, (struct sockaddr *)&auto_a, sizeof(sa_family_t)) == 0);
    fl = sizeof from;
    CHECK(getsockname(cli, (struct sockaddr *)&from, &fl) == 0);
    print_name("autobound", &from, fl);
    CHECK(sendto(cli, "again", 5, 0, (struct sockaddr *)&a, alen) == 5);
    fl = sizeof from;
    r = recvfrom(srv, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
    printf("abstract recvfrom %zd %.*s ", r, (int)r, buf);
    print_name("from", &from, fl);
    int other = socket(AF_UNIX, SOCK_DGRAM, 0);
    printf("bind taken abstract: %s\n", err(bind(other, (struct sockaddr *)&a, alen)));
    close(srv);
    printf("sendto closed name: %s\n", err(sendto(cli, "x", 1, 0, (struct sockaddr *)&a, alen)));
    close(cli);
    close(other);
}

static void rights_and_creds(void) {
    int sv[2], p[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK(pipe(p) == 0);
    char cbuf[CMSG_SPACE(sizeof(int))] = {0};
    struct iovec iov = {"F", 1};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                        .msg_controllen = sizeof cbuf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &p[1], sizeof(int));
    CHECK(sendmsg(sv[0], &mh, 0) == 1);
    close(p[1]);
    char data[4];
    char rbuf[CMSG_SPACE(sizeof(int)) + 64];
    struct iovec riov = {data, sizeof data};
    struct msghdr rh = {.msg_iov = &riov, .msg_iovlen = 1, .msg_control = rbuf,
                        .msg_controllen = sizeof rbuf};
    ssize_t r = recvmsg(sv[1], &rh, MSG_CMSG_CLOEXEC);
    struct cmsghdr *rc = CMSG_FIRSTHDR(&rh);
    CHECK(rc && rc->cmsg_type == SCM_RIGHTS);
    int got;
    memcpy(&got, CMSG_DATA(rc), sizeof got);
    printf("rights: recv %zd, cmsg len %zu, cloexec %d\n", r, (size_t)rc->cmsg_len,
           fcntl(got, F_GETFD) & FD_CLOEXEC);
    CHECK(write(got, "via passed fd", 13) == 13);
    close(got);
    char pb[32];
    r = read(p[0], pb, sizeof pb);
    printf("pipe got %zd %.*s\n", r, (int)r, pb);
    close(p[0]);

    int on = 1;
    CHECK(setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof on) == 0);
    CHECK(write(sv[0], "C", 1) == 1);
    rh.msg_controllen = sizeof rbuf;
    r = recvmsg(sv[1], &rh, 0);
    rc = CMSG_FIRSTHDR(&rh);
    CHECK(rc && rc->cmsg_type == SCM_CREDENTIALS);
    struct ucred uc;
    memcpy(&uc, CMSG_DATA(rc), sizeof uc);
    printf("creds: pid is mine %d, uid %u, gid %u\n", uc.pid == getpid(), uc.uid, uc.gid);
    socklen_t ul = sizeof uc;
    CHECK(getsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, &uc, &ul) == 0);
    printf("SO_PEERCRED: pid is mine %d, uid %u, len %u\n", uc.pid == getpid(), uc.uid, ul);
    uc.pid = 1;
    char cb2[CMSG_SPACE(sizeof uc)] = {0};
    mh.msg_control = cb2;
    mh.msg_controllen = sizeof cb2;
    c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_CREDENTIALS;
    c->cmsg_len = CMSG_LEN(sizeof uc);
    memcpy(CMSG_DATA(c), &uc, sizeof uc);
    if (getuid() != 0) printf("forged pid: %s\n", err(sendmsg(sv[0], &mh, 0)));
    else printf("forged pid: EPERM\n");
    close(sv[0]);
    close(sv[1]);
}

static void options_and_readiness(void) {
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
    int v;
    socklen_t vl = sizeof v;
    getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &v, &vl);
    printf("SO_TYPE %d", v);
    getsockopt(sv[0], SOL_SOCKET, SO_DOMAIN, &v, &vl);
    printf(" SO_DOMAIN %d", v);
    v = 10000;
    setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
    getsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &v, &vl);
    printf(" SO_RCVBUF %d\n", v);
    printf("unknown option: %s\n", err(getsockopt(sv[0], SOL_SOCKET, 12345, &v, &vl)));
    char b;
    printf("nonblocking empty read: %s\n", err(read(sv[0], &b, 1)));
    struct pollfd pf = {sv[1], POLLIN | POLLOUT, 0};
    poll(&pf, 1, 0);
    printf("poll idle: in %d out %d\n", !!(pf.revents & POLLIN), !!(pf.revents & POLLOUT));
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 7};
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, sv[1], &ev) == 0);
    CHECK(write(sv[0], "z", 1) == 1);
    struct epoll_event out;
    int nev = epoll_wait(ep, &out, 1, 1000);
    printf("epoll after write: %d data %u\n", nev, out.data.u32);
    close(sv[0]);
    pf.events = POLLIN | POLLRDHUP;
    poll(&pf, 1, 0);
    printf("poll after peer close: in %d hup %d rdhup %d\n", !!(pf.revents & POLLIN),
           !!(pf.revents & POLLHUP), !!(pf.revents & POLLRDHUP));
    close(sv[1]);
    close(ep);
    int p[2];
    pipe(p);
    struct sockaddr_un a;
    socklen_t al = sizeof a;
    printf("getsockname on a pipe: %s\n", err(getsockname(p[0], (struct sockaddr *)&a, &al)));
    printf("socketpair of AF_INET: %s\n", err(socketpair(AF_INET, SOCK_STREAM, 0, sv)));
    printf("bad type: %s\n", err(socket(AF_UNIX, 9, 0)));
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    pairs();
    named_stream();
    abstract_dgram();
    rights_and_creds();
    options_and_readiness();
    printf("done\n");
    return 0;
}
