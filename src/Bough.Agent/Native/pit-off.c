/*
 * bough pit-off: stops channel 0 of the guest's legacy PIT (i8254), which nothing in the guest uses.
 *
 * The firmware leaves channel 0 running as a square wave (mode 3, 18.2 Hz). A Linux guest that knows its
 * TSC and local APIC timer frequencies (ours: tsc_early_khz) never uses the PIT, and our 6.1 guest kernel
 * never stops it either. The IRQ is masked, but QEMU still emulates every edge of the wave as a main-loop
 * timer: 36 wake-ups a second in every VM, most of an idle sandbox's CPU. Later kernels stop an unused PIT
 * themselves at boot ("x86/i8253: Disable PIT timer 0 when not in use"); this does the same from user space,
 * once, when the agent starts.
 *
 * Sequence: select channel 0, mode 0 (interrupt on terminal count, which fires once and then stays quiet),
 * load a count of zero, then write the mode again (some emulations only apply a mode change when a count is
 * loaded). Needs CAP_SYS_RAWIO for ioperm; the agent runs as root.
 *
 * Exit status 0 when done, 1 when ioperm was refused (the errno is the negated return, printed on stderr).
 * Built and embedded like exec-as (Bough.Agent.csproj, target BoughBuildNative); no libc.
 */
#define PIT_CHANNEL0 0x40
#define PIT_MODE 0x43
#define CH0_LOHI_MODE0 0x30

static long sys3(long n, long a, long b, long c)
{
    long r;
    __asm__ volatile ("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}

static void outb(unsigned char value, unsigned short port)
{
    __asm__ volatile ("outb %0, %1" : : "a"(value), "Nd"(port));
}

static void say_errno(long err)
{
    static const char prefix[] = "bough-agent: pit-off: ioperm: errno ";
    char buf[sizeof prefix + 24];
    int n = 0;
    for (const char *p = prefix; *p; p++) buf[n++] = *p;
    char digits[20];
    int d = 0;
    unsigned long v = (unsigned long)err;
    do { digits[d++] = (char)('0' + v % 10); v /= 10; } while (v && d < 20);
    while (d) buf[n++] = digits[--d];
    buf[n++] = '\n';
    sys3(1 /* write */, 2, (long)buf, n);
}

void _start(void)
{
    long r = sys3(173 /* ioperm */, PIT_CHANNEL0, 4, 1);
    if (r != 0)
    {
        say_errno(-r);
        sys3(60 /* exit */, 1, 0, 0);
    }
    outb(CH0_LOHI_MODE0, PIT_MODE);
    outb(0, PIT_CHANNEL0);
    outb(0, PIT_CHANNEL0);
    outb(CH0_LOHI_MODE0, PIT_MODE);
    sys3(60 /* exit */, 0, 0, 0);
}
