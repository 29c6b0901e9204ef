/*
 * bough exec-as: the trampoline the agent spawns to run a command as another user.
 * posix_spawn cannot change credentials and a managed runtime must not fork; starting the .NET
 * agent itself as the trampoline costs a runtime start per exec (~3 s under TCG), so this is a
 * freestanding static binary of a few hundred bytes (no libc: images may have none).
 *
 *   exec-as UID GID GROUPS EXE ARGV0 [ARGV...]      GROUPS: comma-separated gids, or "-" for none
 *
 * Environment: passed through untouched (the agent gives it exactly the command's environment).
 * Does setgroups, setresgid, setresuid, resets every signal disposition and the signal mask, then
 * execve. On failure: "bough-agent: exec-as: WHAT: errno N" on stderr, exit 127 (ENOENT) or 126.
 *
 * Built by Bough.Agent.csproj (target BoughBuildExecAs) and embedded as a resource:
 *   gcc -Os -static -nostdlib -fno-pie -no-pie -fno-stack-protector -fno-asynchronous-unwind-tables \
 *       -fcf-protection=none -Wl,--build-id=none -Wl,-N -s -o exec-as exec-as.c
 */
typedef unsigned long u64;

static long sys4(long n, long a, long b, long c, long d)
{
    long r;
    register long r10 __asm__("r10") = d;
    __asm__ volatile ("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
    return r;
}

static void say(const char *what, long err)
{
    char buf[256];
    int n = 0;
    const char *p = "bough-agent: exec-as: ";
    while (*p && n < 200) buf[n++] = *p++;
    while (*what && n < 200) buf[n++] = *what++;
    p = ": errno ";
    while (*p) buf[n++] = *p++;
    char d[20];
    int k = 0;
    u64 e = (u64)(err < 0 ? -err : err);
    do { d[k++] = '0' + e % 10; e /= 10; } while (e);
    while (k) buf[n++] = d[--k];
    buf[n++] = '\n';
    sys4(1, 2, (long)buf, n, 0);
}

static void die(const char *what, long err)
{
    say(what, err);
    sys4(60, err == -2 ? 127 : 126, 0, 0, 0);
    for (;;) {}
}

/* Decimal 0..4294967294; advances *s past the digits. */
static unsigned parse(const char **s)
{
    u64 v = 0;
    int digits = 0;
    while (**s >= '0' && **s <= '9') { v = v * 10 + (u64)(**s - '0'); (*s)++; if (++digits > 10) die("bad number", 22); }
    if (!digits || v >= 0xffffffffUL) die("bad number", 22);
    return (unsigned)v;
}

static unsigned groups[65536];

__attribute__((used)) void start_c(long *sp)
{
    long argc = sp[0];
    char **argv = (char **)(sp + 1);
    char **envp = argv + argc + 1;
    if (argc < 6) die("usage: exec-as UID GID GROUPS EXE ARGV0 [ARGV...]", 22);
    const char *s = argv[1];
    unsigned uid = parse(&s);
    if (*s) die("bad uid", 22);
    s = argv[2];
    unsigned gid = parse(&s);
    if (*s) die("bad gid", 22);
    long ngroups = 0;
    s = argv[3];
    if (!(s[0] == '-' && s[1] == 0)) {
        for (;;) {
            if (ngroups >= 65536) die("too many groups", 22);
            groups[ngroups++] = parse(&s);
            if (!*s) break;
            if (*s++ != ',') die("bad groups", 22);
        }
    }
    long r;
    if ((r = sys4(116, ngroups, (long)groups, 0, 0)) < 0) die("setgroups", r);
    if ((r = sys4(119, gid, gid, gid, 0)) < 0) die("setresgid", r);
    if ((r = sys4(117, uid, uid, uid, 0)) < 0) die("setresuid", r);
    u64 act[4] = {0, 0, 0, 0}; /* kernel struct sigaction: handler SIG_DFL, flags, restorer, mask */
    for (long sig = 1; sig <= 64; sig++)
        if (sig != 9 && sig != 19) sys4(13, sig, (long)act, 0, 8);
    u64 empty = 0;
    sys4(14, 2 /* SIG_SETMASK */, (long)&empty, 0, 8);
    r = sys4(59, (long)argv[4], (long)(argv + 5), (long)envp, 0);
    die(argv[5], r);
}

__asm__(".globl _start\n_start:\n  mov %rsp, %rdi\n  and $-16, %rsp\n  call start_c\n  hlt\n");
