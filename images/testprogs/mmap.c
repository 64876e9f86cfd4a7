/* Memory: anonymous mmap/munmap/mprotect, brk, a private file mapping. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
int main(void) {
    char *p = mmap(0, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("anon zero=%d\n", p[12345] == 0);
    memset(p, 7, 1 << 20);
    printf("anon write=%d\n", p[(1 << 20) - 1] == 7);
    printf("mprotect=%d\n", mprotect(p, 4096, PROT_READ));
    printf("munmap=%d\n", munmap(p, 1 << 20));
    char *b0 = sbrk(0);
    char *b1 = sbrk(1 << 16);
    b1[100] = 1;
    printf("brk grew=%d\n", (char *)sbrk(0) - b0 == 1 << 16);
    int fd = open("data/hello.txt", O_RDONLY);
    char *f = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    printf("file map: %.5s\n", f);
    f[0] = 'J';
    char buf[6] = {0};
    pread(fd, buf, 5, 0);
    printf("private write leaves file: %s, map: %.5s\n", buf, f);
    printf("past eof zero=%d\n", f[100] == 0);
    return 0;
}
