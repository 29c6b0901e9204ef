// Real VMs under TCG are CPU-bound: tests share one daemon collection and run one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
// The daemon runs on Linux only (QEMU, Unix sockets, file modes).
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
