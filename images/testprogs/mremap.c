/* mremap: grow in place or moving, shrink, refuse without MAYMOVE; and
 * glibc's realloc of big blocks (which uses mremap). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
int main(void) {
    size_t pg = 4096;
    char *a = mmap(0, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    /* A neighbour right after the first page blocks growth in place. */
    munmap(a + pg, pg);
    char *block = mmap(a + pg, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    strcpy(a, "kept across the move");
    errno = 0;
    void *r = mremap(a, pg, 64 * pg, 0);
    printf("grow blocked: %d enomem=%d\n", r == MAP_FAILED, errno == ENOMEM);
    char *b = mremap(a, pg, 64 * pg, MREMAP_MAYMOVE);
    printf("moved: %d content: %s\n", b != a && b != MAP_FAILED, b);
    b[64 * pg - 1] = 'z';
    char *c = mremap(b, 64 * pg, 2 * pg, 0);
    printf("shrunk in place: %d content: %s\n", c == b, c);
    munmap(block, pg);
    char *big = malloc(1 << 20);
    memset(big, 7, 1 << 20);
    big = realloc(big, 8 << 20);
    printf("realloc kept data: %d\n", big[(1 << 20) - 1] == 7);
    return 0;
}
