/* Prints argv, selected environment variables, ids, cwd and auxv facts. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <unistd.h>
int main(int argc, char **argv) {
    char cwd[256];
    printf("argc=%d\n", argc);
    for (int i = 1; i < argc; i++) {
        const char *v = getenv(argv[i]);
        printf("argv[%d]=%s env=%s\n", i, argv[i], v ? v : "(unset)");
    }
    printf("pagesz=%lu random=%s\n", getauxval(AT_PAGESZ), getauxval(AT_RANDOM) ? "yes" : "no");
    printf("uid=%d gid=%d euid=%d egid=%d\n", getuid(), getgid(), geteuid(), getegid());
    printf("cwd=%s\n", getcwd(cwd, sizeof cwd) ? cwd : "?");
    printf("pid>0=%d\n", getpid() > 0);
    return 0;
}
