/* TRY(what, expr): runs expr and prints "what: result", or "what: -1
 * ERRNAME" when it returns a negative value, for test programs whose
 * output is compared with a native run. */
#ifndef TESTPROGS_TRY_H
#define TESTPROGS_TRY_H
#include <errno.h>
#include <stdio.h>
#include <string.h>

#define TRY(what, expr)                                                   \
    do {                                                                  \
        errno = 0;                                                        \
        long r_ = (long)(expr);                                           \
        if (r_ < 0)                                                       \
            printf("%s: -1 %s\n", what, strerrorname_np(errno));          \
        else                                                              \
            printf("%s: %ld\n", what, r_);                                \
    } while (0)
#endif
