/* Shared by the test programs: runs a call and prints its result and
 * errno text, so native and sandboxed runs can be compared line by line. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#define TRY(name, call)                                                        \
    do {                                                                       \
        errno = 0;                                                             \
        long rc_ = (call);                                                     \
        printf("%s: %ld %s\n", name, rc_, rc_ < 0 ? strerror(errno) : "");     \
    } while (0)
