[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
// Every test boots TCG guests on a 2-core machine: one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
