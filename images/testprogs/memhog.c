/* Touches memory 16 MiB at a time until it has 4 GiB or is killed: for
 * the test that a guest over the memory limit is killed (SIGKILL, as by
 * Linux's OOM killer) while the sandbox and the rest of the pod go on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    size_t total = 0;
    while (total < (4ul << 30)) {
        char *p = malloc(16 << 20);
        if (!p) {
            printf("malloc failed after %zu MiB\n", total >> 20);
            return 3;
        }
        memset(p, 1, 16 << 20);
        total += 16 << 20;
    }
    printf("got 4 GiB\n");
    return 0;
}
