/* probe.h: which signal an access raises, for test programs that touch
 * memory that may not be there. Install on_fault for the signals first. */
#include <setjmp.h>
#include <signal.h>

static sigjmp_buf jump;
static volatile int caught;

static void on_fault(int sig) {
    caught = sig;
    siglongjmp(jump, 1);
}

/* The name of the signal that writing (or reading) *p raises, "none". */
static const char *probe_access(volatile char *p, int write) {
    caught = 0;
    if (!sigsetjmp(jump, 1)) {
        if (write)
            *p = 1;
        else
            (void)*p;
    }
    return caught == SIGBUS ? "SIGBUS" : caught == SIGSEGV ? "SIGSEGV" : caught ? "other" : "none";
}

/* Catches SIGSEGV and SIGBUS with on_fault. */
static void catch_faults(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_fault;
    sa.sa_flags = SA_NODEFER;
    sigaction(SIGSEGV, &sa, 0);
    sigaction(SIGBUS, &sa, 0);
}
