/* Signal frames carry the AVX state: YMM registers survive a handler that
 * clobbers them; the frame is an XSAVE area (UC_FP_XSTATE, the magic
 * markers) holding the interrupted YMM upper halves; a handler's change
 * to the saved state is what the interrupted code gets back. */
#define _GNU_SOURCE
#include <immintrin.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <ucontext.h>

static volatile int saw_xstate, saw_pattern;

__attribute__((target("avx"))) static void handler(int sig, siginfo_t *si, void *ucv) {
    (void)sig; (void)si;
    ucontext_t *uc = ucv;
    uint8_t *fp = (uint8_t *)uc->uc_mcontext.fpregs;
    uint32_t magic1;
    memcpy(&magic1, fp + 464, 4);
    saw_xstate = (uc->uc_flags & 1) && magic1 == 0x46505853;
    if (saw_xstate) {
        /* YMM0's upper half lives at 576 in the standard layout. */
        uint8_t hi[16];
        memcpy(hi, fp + 576, 16);
        saw_pattern = hi[0] == 0x11 && hi[15] == 0x11;
        /* Give the interrupted code a different YMM1 upper half. */
        memset(fp + 576 + 16, 0x77, 16);
    }
    /* Clobber every YMM register here. */
    __m256 z = _mm256_set1_ps(-1.0f);
    __asm__ volatile("vmovups %0, %%ymm0\n vmovups %0, %%ymm1\n vmovups %0, %%ymm2" ::"m"(z)
                     : "xmm0", "xmm1", "xmm2");
}

__attribute__((target("avx"))) int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);
    uint8_t in0[32], in1[32], in2[32], out0[32], out1[32], out2[32];
    memset(in0, 0x11, 32);
    memset(in1, 0x22, 32);
    memset(in2, 0x33, 32);
    __asm__ volatile(
        "vmovdqu %3, %%ymm0\n vmovdqu %4, %%ymm1\n vmovdqu %5, %%ymm2\n"
        "mov $62, %%eax\n mov %6, %%edi\n mov $10, %%esi\n syscall\n" /* kill(getpid(), SIGUSR1) */
        "vmovdqu %%ymm0, %0\n vmovdqu %%ymm1, %1\n vmovdqu %%ymm2, %2\n"
        : "=m"(out0), "=m"(out1), "=m"(out2)
        : "m"(in0), "m"(in1), "m"(in2), "r"(getpid())
        : "rax", "rdi", "rsi", "rcx", "r11", "memory", "xmm0", "xmm1", "xmm2");
    printf("frame is an XSAVE area: %s\n", saw_xstate ? "yes" : "no");
    printf("frame holds the interrupted YMM0 upper half: %s\n", saw_pattern ? "yes" : "no");
    printf("YMM0 survived the handler: %s\n", memcmp(in0, out0, 32) == 0 ? "yes" : "no");
    printf("YMM2 survived the handler: %s\n", memcmp(in2, out2, 32) == 0 ? "yes" : "no");
    int low_kept = memcmp(in1, out1, 16) == 0;
    int high_set = out1[16] == 0x77 && out1[31] == 0x77;
    printf("YMM1 low half kept, upper half from the edited frame: %s %s\n", low_kept ? "yes" : "no",
           high_set ? "yes" : "no");
    return 0;
}
