using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace Bough.Vmm.Tests;

/// <summary>Routes library logs into the xunit test output, which is where failures get diagnosed.</summary>
internal sealed class XunitLoggerProvider(ITestOutputHelper output) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new XunitLogger(output, categoryName);
    public void Dispose() { }

    private sealed class XunitLogger(ITestOutputHelper output, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Debug;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            try
            {
                output.WriteLine($"[{DateTime.UtcNow:HH:mm:ss.fff}] {logLevel} {category}: {formatter(state, exception)}{(exception is null ? "" : " :: " + exception.Message)}");
            }
            catch (InvalidOperationException) { /* test already finished */ }
        }
    }
}

/// <summary>A short, unique temp directory (Unix socket paths must stay under 108 bytes).</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir(string prefix = "t")
    {
        Path = System.IO.Path.Combine("/tmp/bough-vmm-tests", prefix + "-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>A clock the test moves by hand.</summary>
internal sealed class ManualTimeProvider(DateTimeOffset start) : TimeProvider
{
    public DateTimeOffset Now { get; set; } = start;
    public override DateTimeOffset GetUtcNow() => Now;
    public void Advance(TimeSpan by) => Now += by;
}
