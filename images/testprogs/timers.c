/* alarm and setitimer(ITIMER_REAL) deliver SIGALRM; re-arming reports
 * what was left. */
#include <signal.h>
#include <stdio.h>
#include <sys/time.h>
#include <unistd.h>
static volatile int ticks;
static void on_alarm(int s) { (void)s; ticks++; }
int main(void) {
    signal(SIGALRM, on_alarm);
    unsigned first = alarm(5);
    unsigned left = alarm(0);
    printf("alarm(5)=%u then alarm(0)=%u\n", first, left);
    struct itimerval it = {{0, 30000}, {0, 30000}};
    setitimer(ITIMER_REAL, &it, 0);
    while (ticks < 3) pause();
    struct itimerval off = {{0, 0}, {0, 0}}, old;
    setitimer(ITIMER_REAL, &off, &old);
    printf("ticks>=3: %d interval=%ld\n", ticks >= 3, (long)old.it_interval.tv_usec);
    getitimer(ITIMER_REAL, &old);
    printf("disarmed: %d\n", old.it_value.tv_sec == 0 && old.it_value.tv_usec == 0);
    alarm(1);
    pause();
    printf("alarm fired: %d\n", ticks >= 4);
    return 0;
}
