using Bough.Engine;

namespace Bough.Dashboard.Live;

/// <summary>
/// Runs a dashboard action against the engine and turns its failure into the sentence a person should read:
/// the engine's own message for its errors (the same text the API puts in a problem's <c>detail</c>), a
/// short generic one for anything else (logged by the caller's framework, never shown as a stack trace).
/// </summary>
public static class Attempt
{
    /// <summary>Runs <paramref name="action"/>; null on success, else the message to show.</summary>
    public static async Task<string?> RunAsync(Func<Task> action)
    {
        ArgumentNullException.ThrowIfNull(action);
        try
        {
            await action();
            return null;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return Describe(ex);
        }
    }

    /// <summary>The message for <paramref name="ex"/>: the engine's message with its code, or a generic one.</summary>
    public static string Describe(Exception ex) => ex switch
    {
        BoughException b => $"{b.Message} ({b.Code})",
        ArgumentException a => a.Message,
        _ => "The daemon could not do that (an internal error; its log has the details).",
    };
}
