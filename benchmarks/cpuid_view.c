/* A process that sees an AVX2-only CPU on a CPU with AVX-512: CPUID with the AVX-512, VNNI and AMX bits cleared.
 *
 * Loaded with LD_PRELOAD (benchmarks/cpuid_view.py builds and loads it). Its constructor turns on CPUID
 * faulting (Linux arch_prctl(ARCH_SET_CPUID, 0), on CPUs whose /proc/cpuinfo lists cpuid_fault): from then on
 * every CPUID instruction in the process and the threads and children it starts raises SIGSEGV. The
 * handler runs the real CPUID (faulting off for that one instruction), clears the bits below and steps
 * over the instruction. Libraries that pick kernels from CPUID when they load (onnxruntime's MLAS,
 * oneDNN, NumPy) then run their AVX2 code natively, at native speed: what an AVX2-only CPU such as an
 * AMD EPYC Rome runs, though on this CPU's cores and caches. The dynamic loader reads CPUID before any
 * constructor, so glibc's own string functions keep their AVX-512 versions.
 *
 * Programs install SIGSEGV handlers of their own (Python's faulthandler, MXNet's crash logger): sigaction()
 * and signal() are wrapped so that for SIGSEGV they record the program's handler, which gets every fault
 * that is not a CPUID, and leave this one in place. This handler runs on the thread's alternate signal stack
 * where it has one (SA_ONSTACK), as faulthandler's does: a stack overflow is a SIGSEGV that cannot be handled
 * on the overflowed stack. A thread that blocked SIGSEGV would be killed by its next CPUID (the kernel does
 * not deliver a blocked fault: it kills), so sigprocmask() and pthread_sigmask() never block SIGSEGV here, and
 * a process that inherited it blocked (a signal mask survives exec) has it unblocked when this loads.
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <dlfcn.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define BIT(n) (1u << (n))

/* CPUID leaf 7 subleaf 0: EBX AVX512F, DQ, IFMA, PF, ER, CD, BW, VL; ECX AVX512_VBMI, VBMI2, VNNI, BITALG,
 * VPOPCNTDQ; EDX AVX512_4VNNIW, 4FMAPS, VP2INTERSECT, AMX_BF16, AVX512_FP16, AMX_TILE, AMX_INT8.
 * Subleaf 1: EAX AVX_VNNI, AVX512_BF16, AMX_FP16, AVX_IFMA; EDX AVX_VNNI_INT8, AVX_NE_CONVERT, AMX_COMPLEX,
 * AVX_VNNI_INT16, AVX10 (none of which an AVX2-only CPU such as an AMD EPYC Rome has). */
static const uint32_t CLEAR_7_0_EBX = BIT(16) | BIT(17) | BIT(21) | BIT(26) | BIT(27) | BIT(28) | BIT(30) | BIT(31);
static const uint32_t CLEAR_7_0_ECX = BIT(1) | BIT(6) | BIT(11) | BIT(12) | BIT(14);
static const uint32_t CLEAR_7_0_EDX = BIT(2) | BIT(3) | BIT(8) | BIT(22) | BIT(23) | BIT(24) | BIT(25);
static const uint32_t CLEAR_7_1_EAX = BIT(4) | BIT(5) | BIT(21) | BIT(23);
static const uint32_t CLEAR_7_1_EDX = BIT(4) | BIT(5) | BIT(8) | BIT(10) | BIT(19);

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);
typedef int (*sigmask_fn)(int, const sigset_t *, sigset_t *);

static volatile long calls;          /* CPUID instructions answered: read by cpuid_view_calls() */
static struct sigaction program_act; /* the program's own SIGSEGV action (SIG_DFL until it sets one) */

static sigaction_fn real_sigaction(void) {
    static sigaction_fn fn;
    if (!fn) fn = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
    return fn;
}

static void set_faulting(int on) { syscall(SYS_arch_prctl, ARCH_SET_CPUID, on ? 0 : 1); }

static void handler(int sig, siginfo_t *info, void *context) {
    ucontext_t *uc = context;
    greg_t *reg = uc->uc_mcontext.gregs;
    const unsigned char *ip = (const unsigned char *)reg[REG_RIP];
    if (sig == SIGSEGV && info->si_code == SI_KERNEL && ip[0] == 0x0f && ip[1] == 0xa2) {
        uint32_t leaf = (uint32_t)reg[REG_RAX], sub = (uint32_t)reg[REG_RCX], a, b, c, d;
        set_faulting(0);
        __cpuid_count(leaf, sub, a, b, c, d);
        set_faulting(1);
        if (leaf == 7 && sub == 0) {
            b &= ~CLEAR_7_0_EBX;
            c &= ~CLEAR_7_0_ECX;
            d &= ~CLEAR_7_0_EDX;
        } else if (leaf == 7 && sub == 1) {
            a &= ~CLEAR_7_1_EAX;
            d &= ~CLEAR_7_1_EDX;
        }
        reg[REG_RAX] = a;
        reg[REG_RBX] = b;
        reg[REG_RCX] = c;
        reg[REG_RDX] = d;
        reg[REG_RIP] += 2;
        calls++;
        return;
    }
    /* Not a CPUID: what the kernel would do with the program's own action. A handler runs (once, with
     * SA_RESETHAND). Otherwise the default action: a fault raises again when this returns to the instruction;
     * a SIGSEGV sent by kill() or raise() (si_code <= 0) is raised again here, or dropped if ignored. */
    struct sigaction act = program_act;
    if (act.sa_flags & SA_RESETHAND) {
        memset(&program_act, 0, sizeof program_act);
        program_act.sa_handler = SIG_DFL;
    /* A signal mask survives exec: a process started with SIGSEGV blocked would die at its first CPUID. */
    sigset_t segv;
    sigemptyset(&segv);
    sigaddset(&segv, SIGSEGV);
    sigprocmask(SIG_UNBLOCK, &segv, NULL);
    }
    if (act.sa_flags & SA_SIGINFO) {
        act.sa_sigaction(sig, info, context);
    } else if (act.sa_handler != SIG_DFL && act.sa_handler != SIG_IGN) {
        act.sa_handler(sig);
    } else if (act.sa_handler == SIG_IGN && info->si_code <= 0) {
        return;
    } else {
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        real_sigaction()(SIGSEGV, &dfl, NULL);
        if (info->si_code <= 0) raise(SIGSEGV);
    }
}

/* `set` without SIGSEGV when `how` would block it. */
static const sigset_t *unblocking_sigsegv(int how, const sigset_t *set, sigset_t *copy) {
    if (!set || how == SIG_UNBLOCK || !sigismember(set, SIGSEGV)) return set;
    *copy = *set;
    sigdelset(copy, SIGSEGV);
    return copy;
}

int sigprocmask(int how, const sigset_t *set, sigset_t *old) {
    static sigmask_fn real;
    sigset_t copy;
    if (!real) real = (sigmask_fn)dlsym(RTLD_NEXT, "sigprocmask");
    return real(how, unblocking_sigsegv(how, set, &copy), old);
}

int pthread_sigmask(int how, const sigset_t *set, sigset_t *old) {
    static sigmask_fn real;
    sigset_t copy;
    if (!real) real = (sigmask_fn)dlsym(RTLD_NEXT, "pthread_sigmask");
    return real(how, unblocking_sigsegv(how, set, &copy), old);
}

int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
    if (sig != SIGSEGV) return real_sigaction()(sig, act, old);
    if (old) *old = program_act;
    if (act) program_act = *act;
    return 0;
}

sighandler_t signal(int sig, sighandler_t fn) {
    struct sigaction act, old;
    memset(&act, 0, sizeof act);
    act.sa_handler = fn;
    act.sa_flags = SA_RESTART;
    if (sigaction(sig, &act, &old) != 0) return SIG_ERR;
    return old.sa_handler;
}

/* How many CPUID instructions this process had answered; the symbol also tells a process it runs in the view. */
long cpuid_view_calls(void) { return calls; }

/* The flags of ner_fast.machine.FLAGS (/proc/cpuinfo's names) that the masks above clear, for the record a
 * process in the view writes of its CPU (machine.cpu_info): kept here, beside the masks, as their one home. */
const char *cpuid_view_hidden_flags(void) { return "avx512f avx512_vnni amx"; }

__attribute__((constructor)) static void start(void) {
    struct sigaction act;
    memset(&act, 0, sizeof act);
    act.sa_sigaction = handler;
    act.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
    program_act.sa_handler = SIG_DFL;
    /* A signal mask survives exec: a process started with SIGSEGV blocked would die at its first CPUID. */
    sigset_t segv;
    sigemptyset(&segv);
    sigaddset(&segv, SIGSEGV);
    sigprocmask(SIG_UNBLOCK, &segv, NULL);
    /* Without CPUID faulting the process would see the real CPU: better not to start than to mislead. */
    if (real_sigaction()(SIGSEGV, &act, NULL) != 0 || syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0) != 0) {
        static const char msg[] = "cpuid_view: this CPU or kernel cannot fault on CPUID (no cpuid_fault in /proc/cpuinfo)\n";
        write(2, msg, sizeof msg - 1);
        _exit(3);
    }
}
