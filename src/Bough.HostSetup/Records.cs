namespace Bough.HostSetup;

/// <summary>One line of <c>bough doctor</c>: what was checked, whether it is fine, what was seen, how to fix it.</summary>
public sealed record CheckResult(string Name, bool Ok, string Detail, string? Fix = null)
{
    /// <summary>
    /// A passing check that still deserves attention (e.g. low disk space, TCG instead of KVM).
    /// Kept out of the positional signature so the basic shape stays the published one.
    /// </summary>
    public bool Warning { get; init; }
}

/// <summary>
/// Progress of a long setup step. <see cref="Done"/>/<see cref="Total"/> are bytes while downloading,
/// so a UI can draw a real progress bar; both null for steps without a measurable size.
/// </summary>
public sealed record SetupProgress(string Stage, string Message, long? Done = null, long? Total = null);

/// <summary>Which accelerator QEMU should use and why (the why is shown by <c>doctor</c> and in logs).</summary>
public sealed record AccelDecision(string Accel, string Reason);

/// <summary>
/// A Debian package Bough needs on the host and what proves it is installed: command names looked
/// up on PATH (plus the sbin directories, which non-root PATHs often lack) or absolute file paths.
/// </summary>
public sealed record HostPackage(string Name, IReadOnlyList<string> Provides, string Purpose);

/// <summary>
/// A setup step that cannot proceed; the message says what to do (exact commands where possible),
/// because it is shown to the user as is.
/// </summary>
public sealed class SetupException(string message, Exception? inner = null) : Exception(message, inner);
