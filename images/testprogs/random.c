#include <stdio.h>
#include <sys/random.h>
int main(void) {
    unsigned char b[16] = {0};
    int n = getrandom(b, sizeof b, 0), nz = 0;
    for (int i = 0; i < 16; i++) nz |= b[i];
    printf("getrandom=%d nonzero=%d\n", n, nz != 0);
    return 0;
}
